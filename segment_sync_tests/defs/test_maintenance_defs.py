"""Maintenance schedules: log retention and compaction, and outbound reconciliation, as runs."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest

from segment_sync import factory
from segment_sync.definitions import build_definitions
from segment_sync.defs.tags import FAILURE_KIND_TAG, RETRY_ON_OP_FAILURE_TAG
from segment_sync.logs.layout import data_files, partition_dirs
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import ANALYTICS_DB_NAME, connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.settings import SettingsError, load_settings, parse_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.disks import break_disk, damage_file
from segment_sync_tests.outbound.raw_rows import insert_raw

RETENTION_DAYS = 30


def message(message_id: str, timestamp: datetime) -> dict:
    return {"timestamp": timestamp, "message_id": message_id, "outcome": "delivered"}


def item(message_id: str, timestamp: datetime) -> dict:
    return {"timestamp": timestamp, "message_id": message_id, "outcome": "done"}


@pytest.fixture
def logs(write_settings):
    """Settings with a 30-day retention and log files written in small batches over 40 days:
    per table, one file per row; ids tell the age in hours."""
    path = write_settings(logs={"retention_days": RETENTION_DAYS})
    settings = load_settings(path)
    writer = LogWriter(settings.logs.dir)
    now = datetime.now(UTC)
    ages = [40 * 24, 30 * 24 + 2, 30 * 24 - 2, 29 * 24, 5 * 24, 1, 1, 1]
    for age in ages:
        stamp = now - timedelta(hours=age)
        writer.write("outbound_messages", [message(f"m-{age}-{stamp.timestamp()}", stamp)])
        writer.write("inbound_items", [item(f"i-{age}-{stamp.timestamp()}", stamp)])
    return path, settings, now


def table_rows(logs_dir: str, table: str) -> set[tuple]:
    with connect(logs_dir) as con:
        return set(con.execute(f"SELECT * EXCLUDE (date) FROM {table}").fetchall())


def run_maintenance(path, instance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(str(path))
    return defs.resolve_job_def("log_maintenance_job").execute_in_process(instance=instance)


def execute(path, instance) -> dg.ExecuteInProcessResult:
    job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [output] = [e for e in result.all_events if e.is_successful_output]
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def test_schedules_run_by_default_and_target_their_jobs(write_settings):
    defs = build_definitions(str(write_settings()))
    schedules = {
        "log_maintenance_schedule": "log_maintenance_job",
        "outbound_reconcile_schedule": "outbound_reconcile_job",
        "log_checks_schedule": "log_checks_job",
    }
    for name, job in schedules.items():
        schedule = defs.resolve_schedule_def(name)
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert schedule.job_name == job


def test_maintenance_removes_exactly_the_rows_older_than_the_retention(logs):
    path, settings, now = logs
    cutoff = now - timedelta(days=RETENTION_DAYS)
    before = table_rows(settings.logs.dir, "outbound_messages")
    with dg.instance_for_test() as instance:
        assert run_maintenance(path, instance).success
    after = table_rows(settings.logs.dir, "outbound_messages")
    # The run starts after `now`, so its cutoff is a little later: no row sits in between.
    assert after == {row for row in before if row[0] >= cutoff}
    assert len(before) - len(after) == 2


def test_maintenance_compacts_each_partition_to_one_file_keeping_every_row(logs):
    path, settings, now = logs
    cutoff = now - timedelta(days=RETENTION_DAYS)
    before = {r for r in table_rows(settings.logs.dir, "inbound_items") if r[0] >= cutoff}
    with dg.instance_for_test() as instance:
        run_maintenance(path, instance)
    for table in ("outbound_messages", "inbound_items"):
        partitions = partition_dirs(settings.logs.dir, table)
        assert {len(data_files(p)) for p in partitions if data_files(p)} == {1}
    assert table_rows(settings.logs.dir, "inbound_items") == before


def test_maintenance_run_metadata_counts_files_and_removed_rows(logs):
    path, _, _ = logs
    with dg.instance_for_test() as instance:
        result = run_maintenance(path, instance)
        observations = {
            e.asset_key.to_user_string(): {k: v.value for k, v in e.metadata.items()}
            for e in result.asset_observations_for_node("maintain_log_tables")
        }
    metadata = output_metadata(result)
    # Per table: 8 one-row files, 2 rows too old; the 1-hour-old files share a partition.
    assert observations["outbound_messages"]["files_before"] == 8
    assert observations["outbound_messages"]["rows_removed"] == 2
    assert observations["outbound_messages"]["rows"] == 6
    assert observations["outbound_messages"]["files_after"] < 6
    assert metadata["rows_removed"] == 4 and metadata["files_before"] == 16
    assert metadata["files_after"] == sum(o["files_after"] for o in observations.values())
    assert set(observations) == {
        "outbound_log",
        "outbound_messages",
        "inbound_log",
        "inbound_items",
        "sync_runs",
    }
    assert metadata["analytics_db"] == "views refreshed"


def test_a_table_that_cannot_be_maintained_fails_the_run_after_the_others_are_maintained(
    logs,
):
    path, settings, _ = logs
    before = table_rows(settings.logs.dir, "inbound_items")
    # The first table's lock file is a folder (a held table is skipped: test_maintenance_busy).
    (Path(settings.logs.dir) / "outbound_log" / ".maintenance.lock").mkdir()
    with dg.instance_for_test() as instance:
        result = execute(path, instance)
        observed = {
            e.asset_key.to_user_string()
            for e in result.asset_observations_for_node("maintain_log_tables")
        }
        [run] = instance.get_runs()
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "could not maintain 1 log table(s) (outbound_log: IsADirectoryError: " in message
    assert failure.step_failure_data.error.cls_name == "Failure"
    assert run.tags["segment_sync/failure_kind"] == "configuration"  # a person removes it
    assert observed == {"outbound_messages", "inbound_log", "inbound_items", "sync_runs"}
    assert table_rows(settings.logs.dir, "inbound_items") < before  # 2 rows past retention gone
    partitions = partition_dirs(settings.logs.dir, "inbound_items")
    assert {len(data_files(p)) for p in partitions if data_files(p)} == {1}
    with connect(settings.logs.dir) as con:
        [(status, error)] = con.execute("SELECT status, error FROM sync_runs").fetchall()
    assert status == "failure" and error.startswith("could not maintain") and error in message


def test_a_maintenance_run_is_a_sync_runs_row_of_its_own(logs):
    path, settings, _ = logs
    with dg.instance_for_test() as instance:
        result = run_maintenance(path, instance)
    with connect(settings.logs.dir) as con:
        rows = con.execute("SELECT run_id, job, status FROM sync_runs").fetchall()
    assert rows == [(result.run_id, "log_maintenance_job", "success")]


def test_maintenance_refreshes_the_views_while_an_analyst_holds_the_database(logs):
    path, settings, _ = logs
    db = Path(settings.logs.dir) / ANALYTICS_DB_NAME
    LogWriter(settings.logs.dir)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, sys\ncon = duckdb.connect({str(db)!r})\nprint('open', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with dg.instance_for_test() as instance:
            result = run_maintenance(path, instance)
    finally:
        holder.communicate(input="", timeout=30)
    assert result.success
    assert output_metadata(result)["analytics_db"] == "views refreshed"
    assert output_metadata(result)["rows_removed"] == 4  # the rest of the work was done


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def late_event(write_settings, segment_standin):
    """Events 1-3 and 10 sent by a regular run; then event 5 commits behind the watermark."""
    path = write_settings(outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent(f"c-{i}", "point_add", {"points": i}) for i in range(3)])
    _insert(store, 10)
    factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir)).run(
        Stream.EVENTS, "regular"
    )
    _insert(store, 5)
    return path, settings


def _insert(store: LoyaltyStore, id_: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            loyalty_events.insert().values(
                id=id_, customer_id=f"c-{id_}", action="checkout", data=orjson.dumps({}).decode(),
                occurred_at=datetime.now(UTC) - timedelta(minutes=3), origin="loyalty",
            )
        )  # fmt: skip


def reconcile(path, instance, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    defs = build_definitions(str(path))
    schedule = defs.resolve_schedule_def("outbound_reconcile_schedule")
    request = schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests[0]
    job = defs.resolve_job_def("outbound_reconcile_job")
    return job.execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=raise_on_error
    )


def test_a_reconciliation_run_sends_the_late_event_once(late_event, segment_standin):
    path, settings = late_event
    with dg.instance_for_test() as instance:
        first = reconcile(path, instance)
        second = reconcile(path, instance)
    sent = sorted(int(m["messageId"].split("-")[2]) for m in segment_standin.messages)
    assert sent == [1, 2, 3, 5, 10]
    assert output_metadata(first)["undelivered_found"] == 1
    assert output_metadata(first)["messages_sent"] == 1
    assert output_metadata(second)["undelivered_found"] == 0


def test_a_reconciliation_run_records_its_deliveries_for_the_plots(late_event):
    path, _ = late_event
    with dg.instance_for_test() as instance:
        first = reconcile(path, instance)
        second = reconcile(path, instance)
    # outbound_log is observed (never materialized), so the log checks stay evaluated.
    assert first.asset_materializations_for_node("reconcile_outbound_events") == []
    [observation] = first.asset_observations_for_node("reconcile_outbound_events")
    metadata = {k: v.value for k, v in observation.metadata.items()}
    assert metadata["messages_sent"] == 1 and metadata["error_rate"] == 0.0
    assert metadata["p95_response_time_s"] > 0
    assert second.asset_observations_for_node("reconcile_outbound_events") == []


def test_reconciliation_runs_are_sync_runs_rows_triggered_by_the_schedule(late_event):
    path, settings = late_event
    with dg.instance_for_test() as instance:
        result = reconcile(path, instance)
    with connect(settings.logs.dir) as con:
        row = con.execute(
            "SELECT job, trigger, status, messages_sent FROM sync_runs WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
    assert row == ("outbound_reconcile_job", "schedule", "success", 1)


def test_a_reconciliation_that_logs_a_row_as_failed_fails_naming_why_and_the_next_one_passes(
    late_event, segment_standin
):
    path, settings = late_event
    # Behind the watermark (10) beside the late event 5: a row that cannot become a message.
    insert_raw(LoyaltyStore(settings.loyalty_store.url), loyalty_events, id=6, data="{,")
    with dg.instance_for_test() as instance:
        first = reconcile(path, instance, raise_on_error=False)
        second = reconcile(path, instance)
        tags = instance.get_run_by_id(first.run_id).tags
    assert not first.success and second.success
    # As an outbound run fails: its kind on the run (no retry heals a bad row), its reasons.
    assert tags[FAILURE_KIND_TAG] == "permanent" and tags[RETRY_ON_OP_FAILURE_TAG] == "false"
    [failure] = [e for e in first.all_events if e.is_step_failure]
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["failure_kind"].value == "permanent"
    assert "column data is not valid JSON" in metadata["top_reasons"].value
    sent = sorted(int(m["messageId"].split("-")[2]) for m in segment_standin.messages)
    assert sent == [1, 2, 3, 5, 10]  # the good late event went out all the same
    with connect(settings.logs.dir) as con:
        rows = con.execute(
            "SELECT status, messages_sent, messages_failed, error FROM sync_runs "
            "WHERE run_id IN (?, ?) ORDER BY started_at",
            [first.run_id, second.run_id],
        ).fetchall()
    (status, sent_n, failed_n, error), second_row = rows
    assert (status, sent_n, failed_n) == ("failure", 1, 1)
    assert "1 message(s) failed" in error and "column data is not valid JSON" in error
    assert second_row[:3] == ("success", 0, 0)  # logged as failed once, not again


def test_reconciliation_runs_share_the_events_streams_concurrency_limit(write_settings):
    defs = build_definitions(str(write_settings()))
    assert defs.resolve_job_def("outbound_reconcile_job").tags["segment_sync/stream"] == "events"


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def test_maintenance_settings_default_to_90_days_retention_and_a_24_hour_reconciliation():
    settings = parse_settings({})
    assert settings.logs.retention_days == 90
    assert settings.maintenance.reconcile_lookback_hours == 24
    assert settings.maintenance.compact_min_files == 2
    checks = settings.maintenance.checks
    assert checks.outbound_error_rate_max == 0.05 and checks.inbound_failed_items_max == 0
    assert checks.undelivered_event_age_max_minutes == 120


def test_a_reconciliation_window_past_the_retention_is_refused_naming_both_settings():
    with pytest.raises(SettingsError) as raised:
        parse_settings(
            {"logs": {"retention_days": 2}, "maintenance": {"reconcile_lookback_hours": 48}}
        )
    assert "maintenance.reconcile_lookback_hours (48)" in str(raised.value)
    assert "logs.retention_days (2 days" in str(raised.value)


def test_an_undelivered_age_limit_the_check_cannot_see_is_refused():
    with pytest.raises(SettingsError, match="undelivered_event_age_max_minutes"):
        parse_settings(
            {"maintenance": {"reconcile_lookback_hours": 1,
                             "checks": {"undelivered_event_age_max_minutes": 90}}}
        )  # fmt: skip


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"compact_min_files": 1}, "compact_min_files"),
        ({"checks": {"outbound_error_rate_max": 1.5}}, "outbound_error_rate_max"),
        ({"checks": {"inbound_failed_items_max": -1}}, "inbound_failed_items_max"),
        ({"checks": {"undelivered_event_age_max_minutes": 0}}, "undelivered_event_age"),
        ({"reconcile_lookback_hours": 0}, "reconcile_lookback_hours"),
        ({"cron": "daily"}, "cron"),
    ],
)
def test_bad_maintenance_settings_are_refused_naming_the_key(section, key):
    with pytest.raises(SettingsError, match=f"maintenance\\..*{key}"):
        parse_settings({"maintenance": section})


def test_a_damaged_log_file_is_moved_aside_and_fails_that_run_once(logs):
    path, settings, now = logs
    today = partition_dirs(settings.logs.dir, "outbound_messages")[-1]
    damaged, *merged = data_files(today)  # three files of rows an hour old: compacted
    damage_file(damaged, "truncated")

    with dg.instance_for_test() as instance:
        first = defs_job(path).execute_in_process(instance=instance, raise_on_error=False)
        second = defs_job(path).execute_in_process(instance=instance)

    [failure] = [e for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    moved = Path(settings.logs.dir) / "quarantine" / damaged.relative_to(settings.logs.dir)
    assert error.cls_name == "Failure" and "moved 1 unreadable log file(s)" in error.message
    assert str(moved) in error.message and moved.exists() and not damaged.exists()
    assert second.success  # the schedule goes on; the views work again
    assert not any(f.exists() for f in merged) and len(data_files(today)) == 1
    assert len(table_rows(settings.logs.dir, "outbound_messages")) == 4  # 5 within retention
    with connect(settings.logs.dir) as con:
        statuses = con.execute("SELECT status FROM sync_runs ORDER BY started_at").fetchall()
    assert statuses == [("failure",), ("success",)]


def defs_job(path) -> dg.JobDefinition:
    return build_definitions(str(path)).resolve_job_def("log_maintenance_job")


@pytest.fixture
def tmpfs_logs(write_settings, small_tmpfs):
    """Settings whose logs.dir is on a small tmpfs, its writer, and now."""
    path = write_settings(logs={"dir": str(small_tmpfs / "logs")})
    logs_dir = load_settings(path).logs.dir
    return path, logs_dir, LogWriter(logs_dir), datetime.now(UTC)


def test_a_file_moved_aside_is_reported_also_when_the_views_cannot_be_refreshed(
    tmpfs_logs, small_tmpfs
):
    path, logs_dir, writer, now = tmpfs_logs
    for n in range(2):
        writer.write("outbound_messages", [message(f"m{n}", now)])
    damaged, _ = data_files(partition_dirs(logs_dir, "outbound_messages")[-1])
    damage_file(damaged, "truncated")
    break_disk(small_tmpfs, "full")  # the views' new DuckDB file cannot be written

    with dg.instance_for_test() as instance:
        result = defs_job(path).execute_in_process(instance=instance, raise_on_error=False)

    moved = Path(logs_dir) / "quarantine" / damaged.relative_to(logs_dir)
    assert moved.exists() and not damaged.exists()  # moved out of the views by this run
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    # No later run reports a file already moved: this run's failure must name it.
    assert "moved 1 unreadable log file(s)" in error.message, (error.cls_name, error.message)


def test_every_file_moved_aside_is_named_also_when_a_full_disk_fails_the_run(
    tmpfs_logs, small_tmpfs
):
    path, logs_dir, writer, now = tmpfs_logs
    for _ in range(2):  # outbound_log, maintained first: two files, both damaged
        writer.write("outbound_log", [{"timestamp": now, "event_type": "track"}])
    damaged = data_files(partition_dirs(logs_dir, "outbound_log")[-1])
    for file in damaged:
        damage_file(file, "truncated")
    for n in range(2):  # outbound_messages, next: merging its two files needs space
        writer.write("outbound_messages", [message(f"m{n}", now)])
    break_disk(small_tmpfs, "full")

    with dg.instance_for_test() as instance:
        result = defs_job(path).execute_in_process(instance=instance, raise_on_error=False)

    moved = [Path(logs_dir) / "quarantine" / f.relative_to(logs_dir) for f in damaged]
    assert all(m.exists() for m in moved)  # moved out of the views by this run
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    told = failure.step_failure_data.error.message + str(
        failure.step_failure_data.user_failure_data.metadata
    )
    # No later run reports a file already moved: this run names each one.
    assert all(str(m) in told for m in moved), told
