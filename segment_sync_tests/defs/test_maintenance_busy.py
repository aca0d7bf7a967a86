"""A maintenance run whose tables another process holds skips them at once and says so: the
job neither waits for the holder (a minute per lock, twice per table) nor fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.logs.layout import data_files, partition_dirs
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync_tests.logs.lock_holder import held_by_another_process


def small_files(logs_dir: str) -> dict[str, int]:
    """Data files per table."""
    return {t: sum(len(data_files(p)) for p in partition_dirs(logs_dir, t)) for t in TABLES}


def run(path) -> tuple[dg.ExecuteInProcessResult, dict, set[str]]:
    """The maintenance job's result, output metadata and observed tables."""
    job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    outputs = [e for e in result.all_events if e.is_successful_output]
    metadata = (
        {k: v.value for k, v in outputs[0].event_specific_data.metadata.items()} if outputs else {}
    )
    observed = {
        e.asset_key.to_user_string()
        for e in result.asset_observations_for_node("maintain_log_tables")
    }
    return result, metadata, observed


def write_small_files(logs_dir: str) -> None:
    writer = LogWriter(logs_dir)
    for n in range(3):
        stamp = datetime.now(UTC)
        message = {"timestamp": stamp, "message_id": f"m{n}", "outcome": "delivered"}
        writer.write("outbound_messages", [message])
        writer.write(
            "inbound_items", [{"timestamp": stamp, "message_id": f"i{n}", "outcome": "done"}]
        )


def test_a_run_whose_every_table_is_held_skips_them_all_and_succeeds(write_settings):
    path = write_settings()
    logs_dir = load_settings(path).logs.dir
    write_small_files(logs_dir)
    before = small_files(logs_dir)

    with held_by_another_process(logs_dir, *TABLES):
        result, metadata, observed = run(path)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert metadata["busy_tables"] == ", ".join(TABLES)
    assert "busy (another maintenance run" in metadata["tables"]
    assert observed == set()  # nothing counted while another process changes the files
    after = small_files(logs_dir)
    assert after.pop("sync_runs") == 1  # the run's own row, written after the maintenance
    assert after == {t: n for t, n in before.items() if t != "sync_runs"}  # left to the holder
    _, metadata, _ = run(path)  # the next run, with the locks free, maintains every table
    assert metadata["busy_tables"] == "none"
    assert small_files(logs_dir)["outbound_messages"] == 1


def test_a_held_table_never_stops_the_tables_after_it(write_settings):
    path = write_settings()
    logs_dir = load_settings(path).logs.dir
    write_small_files(logs_dir)

    with held_by_another_process(logs_dir, "outbound_messages"):
        result, metadata, observed = run(path)

    assert result.success
    assert metadata["busy_tables"] == "outbound_messages"
    assert observed == set(TABLES) - {"outbound_messages"}
    assert small_files(logs_dir)["outbound_messages"] == 3  # held: untouched
    assert small_files(logs_dir)["inbound_items"] == 1  # after it: compacted


def test_a_table_held_for_over_a_day_fails_the_run_as_transient_naming_it(write_settings):
    path = write_settings(logs={"retention_days": 30})
    logs_dir = load_settings(path).logs.dir
    old = {"timestamp": datetime.now(UTC) - timedelta(days=400), "message_id": "old"}
    LogWriter(logs_dir).write("outbound_messages", [old | {"outcome": "delivered"}])

    with held_by_another_process(logs_dir, "outbound_messages"):
        job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            [run_] = instance.get_runs()

    assert not result.success
    assert run_.tags["segment_sync/failure_kind"] == "transient"
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "outbound_messages: busy" in message
    assert "held through every maintenance run for over a day" in message
    assert "outbound_messages/.maintenance.lock" in message
