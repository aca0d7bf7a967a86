"""Run results: each run's plotted metadata, and a sync_runs row for every failed run."""

from __future__ import annotations

import dagster as dg
import pytest

from segment_sync.definitions import SYNC_JOBS, build_definitions
from segment_sync.defs.resources import SegmentResource
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.disks import fill_disk

SENSOR = "sync_run_failure_sensor"


class UnreachableVault(SegmentResource):
    """A Segment resource whose secret cannot be fetched: it fails while the run initialises."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise RuntimeError(f"could not read the write key {WRITE_KEY} from the vault")


def evaluate_failure_sensor(defs: dg.Definitions, instance, result) -> object:
    """Tick the failure sensor for the failed run `result` (one execute_in_process result)."""
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=defs.resources,
    )
    return defs.resolve_sensor_def(SENSOR)(context)


def evaluate_for_run(defs: dg.Definitions, instance, run: dg.DagsterRun) -> object:
    """Tick the failure sensor for a run the instance marked failed."""
    failure = next(
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(run.run_id).records
        if record.event_log_entry.dagster_event
        and record.event_log_entry.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE
    )
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources=defs.resources,
    )
    return defs.resolve_sensor_def(SENSOR)(context)


def sync_runs(logs_dir: str) -> list[tuple]:
    with connect(logs_dir) as con:
        return con.execute(
            "SELECT run_id, job, trigger, status, error, started_at <= ended_at FROM sync_runs "
            "ORDER BY started_at"
        ).fetchall()


def test_failure_sensor_runs_by_default_and_watches_the_sync_and_maintenance_jobs(
    write_settings,
):
    sensor = build_definitions(str(write_settings())).resolve_sensor_def(SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {job.name for job in SYNC_JOBS} == {
        "outbound_sync_job",
        "outbound_replay_job",
        "outbound_resync_job",
        "inbound_ingest_job",
        "outbound_reconcile_job",
        "log_maintenance_job",
    }


def test_a_run_that_failed_before_its_op_started_gets_a_failure_row(write_settings):
    path = write_settings()
    defs = build_definitions(str(path))
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        # What the run worker reports when it dies before the op (config, import, OOM...).
        run = instance.create_run_for_job(job_def=job, tags={"dagster/sensor_name": "x"})
        instance.report_run_failed(run, message="run worker exited: SEGMENT_WRITE_KEY not set")
        evaluate_for_run(defs, instance, run)
    [row] = sync_runs(load_settings(path).logs.dir)
    assert row[:4] == (run.run_id, "outbound_sync_job", "sensor", "failure")
    assert "SEGMENT_WRITE_KEY not set" in row[4] and row[5]


def test_a_run_whose_resource_failed_to_initialise_gets_a_failure_row_without_the_secret(
    write_settings,
):
    path = write_settings()
    defs = build_definitions(str(path))
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            resources={"segment": UnreachableVault(write_key=WRITE_KEY)},
        )
        assert not result.success
        assert sync_runs(load_settings(path).logs.dir) == []  # the op never ran
        evaluate_failure_sensor(defs, instance, result)
    [row] = sync_runs(load_settings(path).logs.dir)
    assert row[:4] == (result.run_id, "outbound_sync_job", "manual", "failure")
    assert "could not read the write key" in row[4] and "[REDACTED]" in row[4]
    assert WRITE_KEY not in row[4]


def test_the_same_failure_seen_twice_gives_one_row(write_settings):
    path = write_settings()
    defs = build_definitions(str(path))
    job = defs.resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            resources={"segment": UnreachableVault(write_key=WRITE_KEY)},
        )
        evaluate_failure_sensor(defs, instance, result)
        again = evaluate_failure_sensor(defs, instance, result)
    assert isinstance(again, dg.SkipReason)
    assert len(sync_runs(load_settings(path).logs.dir)) == 1


def test_a_failed_run_that_wrote_its_own_row_gets_no_second_one(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1})]
    )
    segment_standin.set_faults(outage_requests=10)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        skipped = evaluate_failure_sensor(defs, instance, result)
    assert isinstance(skipped, dg.SkipReason)
    [row] = sync_runs(load_settings(path).logs.dir)
    assert row[3] == "failure" and "HTTP 503" in row[4]


def _materialization(result, asset: str) -> dict:
    [event] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.event_specific_data.materialization.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in event.metadata.items()}


def _observation(result, asset: str) -> dict:
    """A log table's numbers: the run observes the tables it wrote (never materializes them)."""
    [event] = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and e.event_specific_data.asset_observation.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in event.metadata.items()}


def test_an_outbound_run_records_its_error_rate_and_the_p95_of_its_own_requests(
    write_settings, segment_standin
):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": 100, "max_retries": 20}
    )
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 800, 0, 40)
    segment_standin.set_faults(throttle_rate=0.3, retry_after_s=0.01)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(instance=instance)
    metadata = _materialization(result, "segment_track_calls")
    with connect(settings.logs.dir) as con:
        requests, failed, p95 = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status_code <> 200), "
            "quantile_cont(response_time_s, 0.95) FROM outbound_log WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
    assert failed > 0  # the stand-in throttled some requests; they were retried
    assert metadata["requests"] == requests and metadata["failed_requests"] == failed
    assert metadata["failed_request_share"] == pytest.approx(failed / requests)
    assert metadata["p95_response_time_s"] == pytest.approx(p95)
    assert metadata["messages_sent"] > 0 and metadata["messages_failed"] == 0
    assert metadata["error_rate"] == 0.0  # every message was delivered in the end
    log_table = _observation(result, "outbound_log")
    assert log_table["requests"] == requests
    assert log_table["p95_response_time_s"] == pytest.approx(p95)
    assert "messages_sent" not in log_table  # per-stream counts plot on the stream's asset


def _observation(result, asset: str) -> dict:
    [event] = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and e.event_specific_data.asset_observation.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in event.metadata.items()}


def test_a_failed_outbound_run_still_records_its_numbers_for_the_plots(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 1})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1})]
    )
    segment_standin.set_faults(outage_requests=10)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
    # It delivered nothing: its numbers are an observation, not a materialization.
    metadata = _observation(result, "segment_track_calls")
    assert not result.success
    assert metadata["requests"] == 2 and metadata["failed_request_share"] == 1.0
    assert metadata["error_rate"] == 1.0
    assert metadata["messages_sent"] == 0 and metadata["messages_pending"] == 1


def test_a_failed_inbound_run_records_its_failures_for_the_plots(
    write_settings, antavo_standin, tmp_path
):
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "max_retries": 0,
                 "mappings": [{"name": "Orders", "action": "loyalty_event",
                               "fields": {"action": {"@literal": "checkout"}}}]},
    )  # fmt: skip
    antavo_standin.configure(known_customers={"c-1"})
    InboundBuffer(load_settings(path).inbound.buffer_url).add_many(
        [
            {"type": "track", "event": "Order", "messageId": "ok", "userId": "c-1"},
            {"type": "track", "event": "Order", "messageId": "ghost", "userId": "ghost-9"},
        ]
    )
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("inbound_ingest_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
    metadata = _observation(result, "inbound_log")
    assert not result.success
    assert metadata["antavo_events"] == 1 and metadata["failed"] == 1
    assert metadata["error_rate"] == 0.5  # one of two items failed, inside a 200 bulk answer
    assert metadata["requests"] >= 1 and metadata["p95_response_time_s"] > 0


def test_a_run_whose_sync_runs_row_cannot_be_written_fails_with_one_line_naming_logs_dir(
    write_settings, small_tmpfs
):
    logs_dir = small_tmpfs / "logs"
    path = write_settings(logs={"dir": str(logs_dir)})
    LogWriter(logs_dir)  # the layout exists; then the disk fills
    fill_disk(small_tmpfs)
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")

    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        [run] = instance.get_runs()

    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure"  # an expected failure, not a LogWriteError traceback
    assert f"sync_runs rows under logs.dir ({logs_dir})" in error.message
    assert "No space left on device" in error.message
    assert run.tags["segment_sync/failure_kind"] == "configuration"  # a person frees the disk
