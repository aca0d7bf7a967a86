"""Routing reads times and attribute histories on its own, before the builders: one row whose
time or bytes do not read fails alone (or is left out of a history), the stream goes on."""

from __future__ import annotations

import pytest

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events, profile_changes
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.regions import routed_settings, two_regions, users

OVERFLOW = "9999-12-31 23:59:59.999999-05:00"  # ISO 8601 text, past year 9999 once made UTC
NOT_UTF8 = b'{"country": "DE", "x": "\xff"}'

CASES = {
    "event time overflows": (loyalty_events, {"customer_id": "anna", "occurred_at": OVERFLOW}),
    "event time is garbage": (loyalty_events, {"customer_id": "anna", "occurred_at": "yesterday"}),
    "event time is bytes": (loyalty_events, {"customer_id": "anna", "occurred_at": b"\xff"}),
    "another's profile time overflows": (
        profile_changes, {"customer_id": "zed", "attributes": '{"country": "DE"}',
                          "occurred_at": OVERFLOW}),
    "another's profile not UTF-8": (
        profile_changes, {"customer_id": "zed", "attributes": NOT_UTF8}),
    "anna's profile not UTF-8": (
        profile_changes, {"customer_id": "anna", "attributes": NOT_UTF8}),
    "anna's profile time overflows": (
        profile_changes, {"customer_id": "anna", "attributes": '{"country": "FR"}',
                          "occurred_at": OVERFLOW}),
}  # fmt: skip


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


@pytest.mark.parametrize("case", list(CASES))
def test_one_unreadable_row_fails_alone_and_its_neighbours_reach_their_region(
    case, write_settings, regions
):
    settings = load_settings(routed_settings(write_settings, regions))
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_profile_changes(
        [NewProfileChange("anna", {"country": "DE"}), NewProfileChange("bob", {"country": "US"})]
    )
    before = store.append_events([NewEvent(c, "point_add") for c in ("anna", "bob")])
    table, columns = CASES[case]
    odd = insert_raw(store, table, **columns)
    after = store.append_events([NewEvent(c, "point_add") for c in ("anna", "bob")])

    ok = run_manual_outbound(settings, "all", "run-1", echo=lambda _: None)  # no traceback

    assert not ok  # the odd row is failed, and a run that leaves a failure says so
    tracks = {
        region: sorted(m.split(":")[1] for m in users(standin).get(who, []) if "track" in m)
        for region, standin, who in (("eu", regions.eu, "anna"), ("us", regions.us, "bob"))
    }
    ids = {region: sorted(int(m.split("-")[2]) for m in mids) for region, mids in tracks.items()}
    assert ids == {"eu": [before[0], after[0]], "us": [before[1], after[1]]}
    with connect(settings.logs.dir) as con:
        failed = con.execute(
            "SELECT stream, source_id, error FROM outbound_messages WHERE outcome = 'failed'"
        ).fetchall()
    stream = "events" if table is loyalty_events else "profiles"
    assert [(s, i) for s, i, _ in failed] == [(stream, odd)]  # once, not per destination
