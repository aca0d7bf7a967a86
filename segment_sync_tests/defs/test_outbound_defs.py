"""The outbound code location: a sensor tick on a real instance starts a run that delivers."""

from __future__ import annotations

import dagster as dg
import orjson

from segment_sync.definitions import build_definitions
from segment_sync.defs.outbound_sensors import HANDOVER_LEAD_S, SENSOR_INTERVAL_S, successor_due
from segment_sync.defs.tags import STREAM_TAG
from segment_sync.logs.views import connect
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY


def _json(value: dict) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None = None):
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    return sensor(context), context


def test_definitions_load_with_sensors_running_by_default(write_settings):
    defs = build_definitions(str(write_settings()))
    for name in ("outbound_events_sensor", "outbound_profiles_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert sensor.job_name == "outbound_sync_job"
    assert defs.resolve_job_def("outbound_sync_job").name == "outbound_sync_job"


def test_sensor_skips_when_nothing_is_new(write_settings):
    defs = build_definitions(str(write_settings()))
    with dg.instance_for_test() as instance:
        result, _ = _tick(defs, "outbound_events_sensor", instance)
    assert isinstance(result, dg.SkipReason)


def test_sensor_tick_requests_a_run_up_to_the_newest_row_with_a_run_key(write_settings):
    path = write_settings()
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-1", "point_add", {"points": 1}) for _ in range(5)])
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, "outbound_events_sensor", instance)
        again, _ = _tick(defs, "outbound_events_sensor", instance, cursor=context.cursor)
    assert request.run_key == "events-upto-5"
    assert request.run_config["ops"]["sync_outbound_stream"]["config"]["upto"] == 5
    assert context.cursor == "5"
    assert isinstance(again, dg.SkipReason)


def test_sensor_run_delivers_allow_listed_events_and_fields_and_logs_agree(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    seed(store, events=600, profiles=150, customer_count=40)
    events = store.events_after(0, 10**9, 10_000)
    changes = store.profile_changes_after(0, 10**9, 10_000)
    defs = build_definitions(str(path))
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        for sensor in ("outbound_events_sensor", "outbound_profiles_sensor"):
            request, _ = _tick(defs, sensor, instance)
            run = job.execute_in_process(
                run_config=request.run_config, instance=instance, tags=request.tags
            )
            assert run.success

    received = segment_standin.messages
    tracks = [m for m in received if m["type"] == "track"]
    identifies = [m for m in received if m["type"] == "identify"]
    allowed = set(settings.outbound.event_sync)
    assert sorted((m["userId"], m["event"], _json(m["properties"])) for m in tracks) == sorted(
        (e.customer_id, e.action, _json(e.data)) for e in events if e.action in allowed
    )
    fields = set(settings.outbound.customer_fields_sync)
    expected_identifies = [c for c in changes if set(c.attributes) & fields]
    assert len(identifies) == len(expected_identifies)
    assert all(set(m["traits"]) <= fields and m["traits"] for m in identifies)

    db = connect(settings.logs.dir)
    delivered = db.execute(
        "SELECT message_id FROM outbound_messages WHERE outcome = 'delivered' ORDER BY message_id"
    ).fetchall()
    assert [r[0] for r in delivered] == sorted(m["messageId"] for m in received)
    requests = db.execute(
        "SELECT count(*), sum(message_count), min(status_code), max(status_code) FROM outbound_log"
    ).fetchone()
    assert requests == (len(segment_standin.requests), len(received), 200, 200)
    skipped = db.execute(
        "SELECT count(*) FROM outbound_messages WHERE outcome = 'skipped'"
    ).fetchone()[0]
    assert skipped == len(changes) - len(expected_identifies)
    runs = db.execute("SELECT status, trigger FROM sync_runs").fetchall()
    assert runs == [("success", "sensor"), ("success", "sensor")]


def test_run_metadata_carries_the_counts(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1}), NewEvent("c-2", "opt_in", {})]
    )
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        run = job.execute_in_process(instance=instance)
    (metadata,) = [e.event_specific_data.metadata for e in run.all_events if e.is_successful_output]
    assert metadata["stream"] == dg.MetadataValue.text("events")
    assert metadata["rows_read"] == dg.MetadataValue.int(2)
    assert metadata["messages_sent"] == dg.MetadataValue.int(1)
    assert metadata["not_allow_listed"] == dg.MetadataValue.int(1)  # opt_in is not allow-listed
    assert metadata["messages_failed"] == dg.MetadataValue.int(0)
    assert WRITE_KEY not in repr(run.all_events)


def _failed_sensor_run(write_settings, segment_standin, retry_after_s: float):
    path = write_settings(
        outbound={
            "base_url": segment_standin.url,
            "max_retries": 0,
            "retry_failed_after_s": retry_after_s,
        }
    )
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1})]
    )
    defs = build_definitions(str(path))
    segment_standin.set_faults(outage_requests=1000)
    return defs


def test_sensor_retries_rows_a_failed_run_left_pending_after_the_backoff(
    write_settings, segment_standin
):
    defs = _failed_sensor_run(write_settings, segment_standin, retry_after_s=0)
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, "outbound_events_sensor", instance)
        failed = job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
        )
        assert not failed.success
        segment_standin.set_faults(outage_requests=0)
        retry, _ = _tick(defs, "outbound_events_sensor", instance, cursor=context.cursor)
        assert retry.run_key == f"events-retry-after-{failed.run_id}"
        assert job.execute_in_process(
            run_config=retry.run_config, instance=instance, tags=retry.tags
        ).success
        done, _ = _tick(defs, "outbound_events_sensor", instance, cursor=context.cursor)
    assert isinstance(done, dg.SkipReason) and "all handled" in done.skip_message
    assert len(segment_standin.accepted_message_ids()) == 1


def test_sensor_waits_for_the_backoff_before_retrying_a_failed_run(write_settings, segment_standin):
    defs = _failed_sensor_run(write_settings, segment_standin, retry_after_s=3600)
    with dg.instance_for_test() as instance:
        request, context = _tick(defs, "outbound_events_sensor", instance)
        defs.resolve_job_def("outbound_sync_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
        )
        later, _ = _tick(defs, "outbound_events_sensor", instance, cursor=context.cursor)
    assert isinstance(later, dg.SkipReason) and "retrying in" in later.skip_message


def test_a_follow_runs_successor_is_due_a_tick_and_a_launch_before_its_window_ends():
    follow_s, lead = 180.0, HANDOVER_LEAD_S
    assert lead >= 2 * SENSOR_INTERVAL_S  # a tick may come just too early: the next one is in time
    assert not successor_due(1000.0, follow_s, 1000.0 + follow_s - lead - 1)
    assert successor_due(1000.0, follow_s, 1000.0 + follow_s - lead)
    assert successor_due(1000.0, follow_s, 1000.0 + follow_s + 30)


def test_a_short_follow_window_gets_its_successor_after_half_of_it():
    assert not successor_due(0.0, 10.0, 4.9)
    assert successor_due(0.0, 10.0, 5.0)


def test_one_pass_runs_and_runs_not_yet_started_get_no_early_successor():
    assert not successor_due(0.0, 0.0, 10**6)
    assert not successor_due(None, 180.0, 10**6)


def test_while_a_follow_run_is_active_the_sensor_waits_and_says_which_run_sends(write_settings):
    path = write_settings()
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-1", "point_add", {"points": 1})])
    defs = build_definitions(str(path))
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        active = instance.create_run_for_job(
            job, tags={STREAM_TAG: "events"}, status=dg.DagsterRunStatus.STARTED
        )
        result, context = _tick(defs, "outbound_events_sensor", instance)
    assert isinstance(result, dg.SkipReason)
    assert active.run_id in result.skip_message and "as they commit" in result.skip_message
    assert context.cursor in (None, "", "0")  # the rows are left for the next decision
