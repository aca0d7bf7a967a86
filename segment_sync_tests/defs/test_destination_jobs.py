"""Reconciliation, replay and resync as Dagster jobs with several destinations: each destination
gets the rows routed to it, with its own write key resource, in one real Dagster run."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.definitions import build_definitions
from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import (
    EU_KEY,
    US_KEY,
    anna_in_eu_bob_in_us,
    routed_settings,
    two_regions,
    users,
)
from segment_sync_tests.outbound.test_regions_reconcile import _late_commit


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def _quiet(_: str) -> None:
    pass


def _run(defs: dg.Definitions, job: str, ops: dict | None = None) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(job).execute_in_process(
            run_config={"ops": ops or {}}, instance=instance, raise_on_error=False
        )


def _observed(run: dg.ExecuteInProcessResult, node: str) -> dict:
    """The metadata of the op's last outbound_log observation, as plain values."""
    last = run.asset_observations_for_node(node)[-1]
    return {k: v.value for k, v in last.metadata.items()}


def test_the_reconcile_job_sends_each_late_row_to_its_customers_destination(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, ids = anna_in_eu_bob_in_us(path, ("anna", "bob", "bob", "anna"))
    with store.engine.begin() as conn:  # ids[0] (anna) and ids[1] (bob) commit late
        conn.execute(loyalty_events.delete().where(loyalty_events.c.id.in_(ids[:2])))
    assert run_manual_outbound(settings, "events", "run-1", echo=_quiet)
    eu_before, us_before = len(regions.eu.messages), len(regions.us.messages)
    _late_commit(store, ids[0], "anna")
    _late_commit(store, ids[1], "bob")

    run = _run(build_definitions(str(path)), "outbound_reconcile_job")

    assert run.success
    assert len(regions.eu.messages) == eu_before + 1 and regions.eu.messages[-1]["userId"] == "anna"
    assert len(regions.us.messages) == us_before + 1 and regions.us.messages[-1]["userId"] == "bob"
    assert regions.eu.dropped()["messages"] == regions.us.dropped()["messages"] == 0
    metadata = _observed(run, "reconcile_outbound_events")
    assert metadata["eu_undelivered_found"] == metadata["us_undelivered_found"] == 1
    assert EU_KEY not in repr(run.all_events) and US_KEY not in repr(run.all_events)


def test_the_replay_job_resends_a_fixed_customer_to_the_destination_they_now_belong_to(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_profile_changes([NewProfileChange("anna", {"country": "DE"})])
    store.append_events([NewEvent("anna", "point_add"), NewEvent("nobody", "point_add")])
    assert not run_manual_outbound(settings, "events", "run-1", echo=_quiet)  # nobody failed
    # The fix: nobody's country, recorded as of before their event.
    store.append_profile_changes(
        [
            NewProfileChange(
                "nobody", {"country": "US"}, occurred_at=datetime(2000, 1, 1, tzinfo=UTC)
            )
        ]
    )

    run = _run(
        build_definitions(str(path)),
        "outbound_replay_job",
        {"replay_outbound_messages": {"config": {"stream": "events"}}},
    )

    assert run.success
    assert list(users(regions.us)) == ["nobody"] and len(users(regions.us)["nobody"]) == 1
    assert sorted(users(regions.eu)) == ["anna"] and len(users(regions.eu)["anna"]) == 1


def test_the_resync_job_resends_each_customer_to_their_own_destination(write_settings, regions):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, _ = anna_in_eu_bob_in_us(path, ("anna", "bob"))
    assert run_manual_outbound(settings, "all", "run-1", echo=_quiet)
    first = users(regions.eu), users(regions.us)

    run = _run(
        build_definitions(str(path)),
        "outbound_resync_job",
        {"resync_outbound_rows": {"config": {"since": "1h", "stream": "all"}}},
    )

    assert run.success
    for standin, before in zip((regions.eu, regions.us), first, strict=True):
        assert users(standin) == {c: ids * 2 for c, ids in before.items()}  # same messageIds
    assert sorted(users(regions.eu)) == ["anna"] and sorted(users(regions.us)) == ["bob"]


def test_the_resync_jobs_destination_config_resends_to_that_destination_only(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, _ = anna_in_eu_bob_in_us(path, ("anna", "bob"))
    assert run_manual_outbound(settings, "events", "run-1", echo=_quiet)
    eu_before, us_before = len(regions.eu.messages), len(regions.us.messages)

    config = {"since": "1h", "stream": "events", "destination": "us"}
    run = _run(
        build_definitions(str(path)),
        "outbound_resync_job",
        {"resync_outbound_rows": {"config": config}},
    )

    assert run.success
    assert len(regions.eu.messages) == eu_before
    assert len(regions.us.messages) == us_before + 1


def test_the_resync_job_names_an_unknown_destination_and_sends_nothing(write_settings, regions):
    path = routed_settings(write_settings, regions)
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_profile_changes([NewProfileChange("anna", {"country": "DE"})])

    config = {"since": "1h", "destination": "apac"}
    run = _run(
        build_definitions(str(path)),
        "outbound_resync_job",
        {"resync_outbound_rows": {"config": config}},
    )

    assert not run.success
    [failure] = [e for e in run.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "no 'apac' in outbound.destinations (eu, us)" in message
    assert regions.eu.messages == regions.us.messages == []


def test_a_destination_that_is_down_fails_the_reconcile_run_but_not_the_others_rows(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    settings = load_settings(path)
    store, ids = anna_in_eu_bob_in_us(path, ("anna", "bob", "bob", "anna"))
    with store.engine.begin() as conn:
        conn.execute(loyalty_events.delete().where(loyalty_events.c.id.in_(ids[:2])))
    assert run_manual_outbound(settings, "events", "run-1", echo=_quiet)
    _late_commit(store, ids[0], "anna")
    _late_commit(store, ids[1], "bob")
    regions.eu.set_faults(error_rate=1.0)  # eu answers 500 to everything
    us_before = len(regions.us.messages)

    run = _run(build_definitions(str(path)), "outbound_reconcile_job")

    assert not run.success
    assert len(regions.us.messages) == us_before + 1 and regions.us.messages[-1]["userId"] == "bob"
    [failure] = [e for e in run.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "Failure: destination eu: Segment request" in message and "stays pending" in message
