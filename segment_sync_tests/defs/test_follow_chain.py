"""A follow run's successor is requested only while there is work: rows arrived since the run
was requested, or rows are pending. An idle store starts no runs. Real sensor ticks on a real
instance; the sender is a run record started long enough ago that its successor is due."""

from __future__ import annotations

import time

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings

SENSOR = "outbound_events_sensor"


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    return defs.resolve_sensor_def(SENSOR)(context), context


def _append(path, n: int = 1) -> None:
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": i}) for i in range(n)]
    )


def _deliver_everything(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """A real run sends what the store holds, so nothing is pending."""
    assert defs.resolve_job_def("outbound_sync_job").execute_in_process(instance=instance).success


def _sender(defs, instance, request: dg.RunRequest) -> dg.DagsterRun:
    """The run the sensor requested, started a whole follow window ago (its successor is due)."""
    run = instance.create_run_for_job(
        defs.resolve_job_def("outbound_sync_job"),
        run_config=request.run_config,
        tags={**request.tags, "dagster/run_key": request.run_key},
        status=dg.DagsterRunStatus.STARTING,
    )
    started = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name
    )
    follow_s = load_settings(defs.resources["settings"].path).outbound.follow_s
    instance.report_dagster_event(started, run.run_id, timestamp=time.time() - follow_s)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run


def test_a_follow_run_on_an_idle_store_gets_no_successor(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "follow_s": 60})
    _append(path)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, instance)
        _deliver_everything(defs, instance)
        sender = _sender(defs, instance, request)

        again, _ = _tick(defs, instance, context.cursor)  # nothing arrived since the request

    assert isinstance(again, dg.SkipReason), again  # today: a successor, every window
    assert sender.run_id in again.skip_message and "no successor" in again.skip_message


def test_rows_that_arrived_during_the_window_get_a_successor(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "follow_s": 60})
    _append(path)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, instance)
        _deliver_everything(defs, instance)
        sender = _sender(defs, instance, request)
        _append(path, 2)  # committed while the sender follows (and sends them)
        _deliver_everything(defs, instance)

        again, _ = _tick(defs, instance, context.cursor)

    assert isinstance(again, dg.RunRequest), again
    assert again.run_key == f"events-after-{sender.run_id}"


def test_rows_pending_when_the_window_ends_get_a_successor(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "follow_s": 60})
    _append(path, 3)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, instance)
        sender = _sender(defs, instance, request)  # it has not sent them yet

        again, _ = _tick(defs, instance, context.cursor)

    assert isinstance(again, dg.RunRequest), again
    assert again.run_key == f"events-after-{sender.run_id}"


def test_rows_left_by_a_run_stopped_before_it_sent_start_the_next_run(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "follow_s": 60})
    _append(path, 3)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, instance)
        stopped = _sender(defs, instance, request)
        instance.report_run_canceled(stopped)  # e.g. terminated from the UI before it sent

        again, _ = _tick(defs, instance, context.cursor)

    assert isinstance(again, dg.RunRequest), again  # today: "a run has them", never sent
    assert again.run_key == f"events-pending-after-{stopped.run_id}"
