"""Reconciliation per destination: a delivery to one Segment source never hides a miss at another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segment_sync import factory
from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.db import create_engine
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.single_heir import singles
from segment_sync.segment.messages import message_id
from segment_sync.settings import SettingsError, load_settings
from segment_sync_tests.outbound.regions import (
    EU_KEY,
    US_KEY,
    anna_in_eu_bob_in_us,
    routed_settings,
    two_regions,
)


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def _late_commit(store: LoyaltyStore, row_id: int, customer: str) -> datetime:
    """An event committed behind the watermark (the case reconciliation exists for)."""
    at = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            loyalty_events.insert().values(
                id=row_id, customer_id=customer, action="point_add", data="{}", occurred_at=at
            )
        )
    return at


def _reconcile(settings, destination: str, key: str):
    sync = factory.outbound_sync(
        settings.for_destination(destination), key, LogWriter(settings.logs.dir)
    )
    try:
        return reconcile_events(sync, settings.logs.dir, f"rec-{destination}", timedelta(hours=1))
    finally:
        sync.state.close()


def test_a_row_delivered_to_another_destination_is_still_sent_to_its_own(write_settings, regions):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, ids = anna_in_eu_bob_in_us(path, ("anna", "bob", "bob", "anna"))
    with store.engine.begin() as conn:  # id ids[1] commits late, after the run passed it
        conn.execute(loyalty_events.delete().where(loyalty_events.c.id == ids[1]))
    assert run_manual_outbound(settings, "events", "run-1", echo=lambda _: None)
    at = _late_commit(store, ids[1], "bob")
    late = message_id("evt", ids[1], at)
    # The same messageId logged delivered at the EU source (e.g. before a routing change).
    with LogWriter(settings.logs.dir) as logs:
        logs.append(
            "outbound_messages",
            {"timestamp": at, "message_id": late, "outcome": "delivered", "destination": "eu"},
        )

    eu, us = _reconcile(settings, "eu", EU_KEY), _reconcile(settings, "us", US_KEY)

    assert eu.sent is None and [r.id for r in us.found.events] == [ids[1]]
    assert late in regions.us.accepted_message_ids()
    assert late not in regions.eu.accepted_message_ids()


def test_a_command_that_does_not_choose_a_destination_refuses_routed_settings(
    write_settings, regions
):
    settings = load_settings(routed_settings(write_settings, regions))
    with pytest.raises(SettingsError, match="does not route customers among eu, us"):
        factory.outbound_sync(settings, US_KEY, LogWriter(settings.logs.dir))
    assert regions.eu.accepted_message_ids() == regions.us.accepted_message_ids() == []


def test_a_row_routed_nowhere_committed_behind_the_watermark_is_logged_failed_once(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, ids = anna_in_eu_bob_in_us(path, ("anna", "nobody", "bob"))
    with store.engine.begin() as conn:  # nobody's event (no country) commits late
        conn.execute(loyalty_events.delete().where(loyalty_events.c.id == ids[1]))
    assert run_manual_outbound(settings, "events", "run-1", echo=lambda _: None)
    _late_commit(store, ids[1], "nobody")

    eu, us = _reconcile(settings, "eu", EU_KEY), _reconcile(settings, "us", US_KEY)
    again = _reconcile(settings, "eu", EU_KEY)

    assert [r.id for r in eu.found.unsendable] == [ids[1]]
    assert us.found.unsendable == again.found.unsendable == []
    with connect(settings.logs.dir) as con:
        failed = con.execute(
            "SELECT source_id, destination, error FROM outbound_messages WHERE outcome = 'failed'"
        ).fetchall()
    assert [f[:2] for f in failed] == [(ids[1], "eu")] and "has no 'country'" in failed[0][2]


# noted: by this version's single destination; found: an older version's (no note), so the
# only destination key with progress at the first routed use
@pytest.mark.parametrize("heir", ["noted", "found"])
def test_the_destination_continuing_the_single_destination_does_not_resend_its_deliveries(
    write_settings, regions, heir
):
    path = write_settings(outbound={"base_url": regions.us.url})  # US source, US key
    store, ids = anna_in_eu_bob_in_us(path, ("anna", "bob"))
    assert run_manual_outbound(load_settings(path), "events", "single", echo=lambda _: None)
    if heir == "found":
        with create_engine(load_settings(path).outbound.state_url).begin() as conn:
            conn.execute(singles.delete())
    sent_before = len(regions.us.messages)
    routed = load_settings(routed_settings(write_settings, regions))  # us: the same source

    us = _reconcile(routed, "us", US_KEY)

    assert us.found.candidates == 1 and us.found.events == [] and us.sent is None
    assert len(regions.us.messages) == sent_before
