"""Asset checks of the log tables: evaluated on real log files and stores, each can pass and fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson
import pytest

from segment_sync import factory
from segment_sync.definitions import build_definitions
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.syncs import thirty_events_and_a_one_request_outage


def evaluate_checks(path) -> dict[str, dg.AssetCheckEvaluation]:
    """Run log_checks_job on a real instance; the evaluations by check name."""
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("log_checks_job").execute_in_process(instance=instance)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def write_messages(logs_dir: str, age: timedelta, **outcomes: int) -> None:
    """outbound_messages rows `age` ago, e.g. delivered=96, failed=4."""
    stamp = datetime.now(UTC) - age
    rows = [
        {"timestamp": stamp, "message_id": f"{outcome}-{i}-{stamp.timestamp()}", "outcome": outcome}
        for outcome, count in outcomes.items()
        for i in range(count)
    ]
    LogWriter(logs_dir).write("outbound_messages", rows)


def write_items(logs_dir: str, outcomes: list[str], age: timedelta) -> None:
    stamp = datetime.now(UTC) - age
    rows = [
        {"timestamp": stamp, "buffer_item_id": i, "message_id": f"m-{i}", "outcome": outcome,
         "error": "customer not found" if outcome == "failed" else None}
        for i, outcome in enumerate(outcomes)
    ]  # fmt: skip
    LogWriter(logs_dir).write("inbound_items", rows)


def test_checks_pass_on_empty_logs(write_settings):
    evaluations = evaluate_checks(write_settings())
    assert set(evaluations) == {
        "outbound_error_rate",
        "inbound_failed_items",
        "oldest_undelivered_event",
        "loyalty_source_alive",
    }
    assert all(e.passed for e in evaluations.values())


def test_outbound_error_rate_under_the_limit_passes(write_settings):
    path = write_settings(maintenance={"checks": {"outbound_error_rate_max": 0.05}})
    write_messages(load_settings(path).logs.dir, timedelta(minutes=10), delivered=96, failed=4)
    check = evaluate_checks(path)["outbound_error_rate"]
    assert check.passed and meta(check)["error_rate"] == pytest.approx(0.04)


def test_outbound_error_rate_over_the_limit_fails_with_error_severity(write_settings):
    path = write_settings(maintenance={"checks": {"outbound_error_rate_max": 0.05}})
    logs_dir = load_settings(path).logs.dir
    write_messages(logs_dir, timedelta(minutes=10), delivered=90, failed=4, pending=6)
    check = evaluate_checks(path)["outbound_error_rate"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert meta(check)["undelivered"] == 10 and meta(check)["messages"] == 100
    assert "10 of 100" in check.description


def test_skipped_messages_are_not_errors(write_settings):
    path = write_settings()
    write_messages(load_settings(path).logs.dir, timedelta(minutes=1), delivered=1, skipped=99)
    check = evaluate_checks(path)["outbound_error_rate"]
    assert check.passed and meta(check)["messages"] == 1


def test_outbound_errors_before_the_window_do_not_count(write_settings):
    path = write_settings(maintenance={"checks": {"outbound_error_rate_window_hours": 1}})
    logs_dir = load_settings(path).logs.dir
    write_messages(logs_dir, timedelta(hours=2), failed=50)
    write_messages(logs_dir, timedelta(minutes=5), delivered=20)
    check = evaluate_checks(path)["outbound_error_rate"]
    assert check.passed and meta(check)["messages"] == 20


def test_a_real_outage_fails_the_error_rate_check(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events([NewEvent("c-1", "point_add", {})])
    segment_standin.set_faults(outage_requests=5)
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    with pytest.raises(OutboundFailed):
        sync.run(Stream.EVENTS, "run-outage")
    check = evaluate_checks(path)["outbound_error_rate"]
    assert not check.passed and meta(check)["error_rate"] == 1.0


def test_a_message_failed_then_delivered_counts_once_as_delivered(write_settings):
    path = write_settings(maintenance={"checks": {"outbound_error_rate_max": 0.05}})
    now = datetime.now(UTC)
    attempts = [  # m-0 failed twice before it got through; m-1 is still failing
        ("m-0", "failed", 30), ("m-0", "pending", 20), ("m-0", "delivered", 10),
        ("m-1", "failed", 25), ("m-1", "failed", 5),
        *((f"ok-{i}", "delivered", 15) for i in range(18)),
    ]  # fmt: skip
    rows = [
        {"timestamp": now - timedelta(minutes=age), "message_id": mid, "outcome": outcome}
        for mid, outcome, age in attempts
    ]
    LogWriter(load_settings(path).logs.dir).write("outbound_messages", rows)
    check = evaluate_checks(path)["outbound_error_rate"]
    assert meta(check)["messages"] == 20 and meta(check)["undelivered"] == 1
    assert check.passed and "1 of 20" in check.description


def test_an_outage_the_sync_recovered_from_passes_the_error_rate_check(
    write_settings, segment_standin
):
    path, settings = thirty_events_and_a_one_request_outage(write_settings, segment_standin)
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    with pytest.raises(OutboundFailed):
        sync.run(Stream.EVENTS, "run-during-outage")
    assert not evaluate_checks(path)["outbound_error_rate"].passed
    sync.run(Stream.EVENTS, "run-after-outage")
    check = evaluate_checks(path)["outbound_error_rate"]
    assert meta(check)["messages"] == 30 and meta(check)["undelivered"] == 0
    assert check.passed


def test_an_inbound_item_failed_in_the_last_hour_fails_the_check(write_settings):
    path = write_settings()
    write_items(load_settings(path).logs.dir, ["done", "failed", "done"], timedelta(minutes=20))
    check = evaluate_checks(path)["inbound_failed_items"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert meta(check)["failed_items_last_hour"] == 1
    assert meta(check)["latest_error"] == "customer not found"


def test_inbound_items_that_failed_over_an_hour_ago_pass_the_check(write_settings):
    path = write_settings()
    write_items(load_settings(path).logs.dir, ["failed", "failed"], timedelta(minutes=70))
    write_items(load_settings(path).logs.dir, ["done", "retry"], timedelta(minutes=5))
    assert evaluate_checks(path)["inbound_failed_items"].passed


def test_inbound_failures_up_to_the_configured_limit_pass(write_settings):
    path = write_settings(maintenance={"checks": {"inbound_failed_items_max": 2}})
    write_items(load_settings(path).logs.dir, ["failed", "failed"], timedelta(minutes=5))
    check = evaluate_checks(path)["inbound_failed_items"]
    assert check.passed and meta(check)["failed_items_last_hour"] == 2


# ---------------------------------------------------------------------------------------------
# Oldest undelivered loyalty event
# ---------------------------------------------------------------------------------------------


def insert_event(store: LoyaltyStore, id_: int, age: timedelta) -> None:
    """An event committed with an explicit id (behind the watermark), `age` ago."""
    with store.engine.begin() as conn:
        conn.execute(
            loyalty_events.insert().values(
                id=id_, customer_id=f"c-{id_}", action="point_add", data=orjson.dumps({}).decode(),
                occurred_at=datetime.now(UTC) - age, origin="loyalty",
            )
        )  # fmt: skip


@pytest.fixture
def synced(write_settings, segment_standin):
    """Events 1-2 and 10 delivered by a regular run: the watermark is at 10."""
    path = write_settings(
        outbound={"base_url": segment_standin.url},
        maintenance={"checks": {"undelivered_event_age_max_minutes": 60}},
    )
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent("c-1", "point_add", {}), NewEvent("c-2", "point_add", {})])
    insert_event(store, 10, timedelta(minutes=1))
    factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir)).run(
        Stream.EVENTS, "regular"
    )
    return path, store


def test_everything_behind_the_watermark_delivered_passes(synced):
    path, _ = synced
    check = evaluate_checks(path)["oldest_undelivered_event"]
    assert check.passed and meta(check)["undelivered_events"] == 0
    assert meta(check)["watermark"] == 10


def test_an_old_event_left_behind_the_watermark_fails_the_check(synced):
    path, store = synced
    insert_event(store, 5, timedelta(hours=3))
    check = evaluate_checks(path)["oldest_undelivered_event"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert meta(check)["oldest_event_id"] == 5
    assert meta(check)["oldest_age_minutes"] == pytest.approx(180, abs=1)


def test_a_recent_event_left_behind_the_watermark_passes_until_it_is_old(synced):
    path, store = synced
    insert_event(store, 5, timedelta(minutes=10))
    check = evaluate_checks(path)["oldest_undelivered_event"]
    assert check.passed and meta(check)["undelivered_events"] == 1


def test_the_check_passes_again_once_reconciliation_sent_the_event(synced):
    path, store = synced
    insert_event(store, 5, timedelta(hours=3))
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def("outbound_reconcile_job")
        assert job.execute_in_process(instance=instance).success
    assert evaluate_checks(path)["oldest_undelivered_event"].passed


def test_an_old_event_still_waiting_above_the_watermark_fails_the_check(synced):
    path, store = synced
    old = datetime.now(UTC) - timedelta(hours=3)
    store.append_events(
        [
            NewEvent("c-3", "opt_in", {}, occurred_at=old),
            NewEvent("c-3", "point_add", {}, occurred_at=old),
        ]
    )
    check = evaluate_checks(path)["oldest_undelivered_event"]
    assert not check.passed
    assert meta(check)["oldest_pending_event_id"] == 12  # the first allow-listed one
    assert meta(check)["oldest_pending_age_minutes"] == pytest.approx(180, abs=1)


def test_a_fresh_event_waiting_above_the_watermark_passes(synced):
    path, store = synced
    store.append_events([NewEvent("c-3", "point_add", {})])
    check = evaluate_checks(path)["oldest_undelivered_event"]
    assert check.passed and meta(check)["oldest_pending_event_id"] == 11


def _same_hour_of_past_days(path, per_hour: int, days: int = 7) -> None:
    """`per_hour` loyalty events in the hour before now on each of the last `days` days."""
    now = datetime.now(UTC)
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [
            NewEvent("c-1", "point_add", {}, occurred_at=now - timedelta(days=d, minutes=m + 1))
            for d in range(1, days + 1)
            for m in range(per_hour)
        ]
    )


def test_a_loyalty_feed_gone_silent_fails_the_source_check(write_settings):
    path = write_settings()
    _same_hour_of_past_days(path, per_hour=30)
    check = evaluate_checks(path)["loyalty_source_alive"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.asset_key == dg.AssetKey("loyalty_events")
    assert meta(check)["new_events_last_hour"] == 0 and meta(check)["same_hour_median"] == 30
    assert "is the loyalty platform still writing" in check.description


def test_a_feed_as_busy_as_usual_passes_the_source_check(write_settings):
    path = write_settings()
    _same_hour_of_past_days(path, per_hour=30)
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-1", "point_add", {}) for _ in range(25)])
    check = evaluate_checks(path)["loyalty_source_alive"]
    assert check.passed and meta(check)["judged"] is True


def test_the_source_check_threshold_comes_from_the_settings(write_settings):
    path = write_settings(maintenance={"checks": {"source_alive_min_baseline": 50}})
    _same_hour_of_past_days(path, per_hour=30)
    check = evaluate_checks(path)["loyalty_source_alive"]
    assert check.passed and meta(check)["judged"] is False
