"""Run results: per-run request statistics for the UI's plots, and a `sync_runs` row for every
failed run, also one that failed before its op could write one.

No `from __future__ import annotations` here: Dagster inspects the sensor's resource parameters.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from segment_sync import factory
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.tags import SETTINGS_HASH_TAG, run_trigger
from segment_sync.logs.queries import error_rate, has_run_row, request_stats
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, count_from_log
from segment_sync.settings import Settings

MAX_ERROR_CHARS = 2000


def run_log_metadata(
    logs_dir: Path | str,
    table: str,
    run_id: str,
    started_at: datetime,
    *,
    delivered: int,
    undelivered: int,
) -> dict[str, dg.MetadataValue]:
    """Numeric metadata the UI plots per run: `error_rate` (undelivered / attempted messages or
    items, from the run's counts) and, from the run's own request rows, requests, failed
    requests (retried ones included), their share and the p95 response time. Never fails the
    run: on a read error the metadata says why instead."""
    metadata = {
        "error_rate": dg.MetadataValue.float(error_rate(undelivered, delivered + undelivered))
    }
    try:
        stats = request_stats(logs_dir, table, run_id=run_id, since=started_at)
    except duckdb.Error as exc:
        metadata["request_stats_error"] = dg.MetadataValue.text(f"{type(exc).__name__}: {exc}")
        return metadata
    metadata |= {
        "requests": dg.MetadataValue.int(stats.requests),
        "failed_requests": dg.MetadataValue.int(stats.failed),
        "failed_request_share": dg.MetadataValue.float(stats.failed_share),
    }
    if stats.p95_response_time_s is not None:
        metadata["p95_response_time_s"] = dg.MetadataValue.float(stats.p95_response_time_s)
    return metadata


# ---------------------------------------------------------------------------------------------
# Failed runs
# ---------------------------------------------------------------------------------------------


def known_secrets(settings: Settings) -> Redactor:
    """Every secret this code location knows (env vars, URL passwords), for redacting errors."""
    return Redactor(settings.secrets())


def _error_text(error) -> str:
    """A serialised error and its causes, outermost first, one line each."""
    lines = []
    while error is not None:
        lines.append(error.message.strip())
        error = error.cause
    return "; caused by ".join(line for line in lines if line)


def failure_reason(
    step_failures: Sequence[dg.DagsterEvent], run_failure: dg.DagsterEvent | None
) -> str:
    """What went wrong: the failed steps' errors, else the run failure's own error or message."""
    parts = []
    for event in step_failures:
        error = getattr(event.event_specific_data, "error", None)
        parts.append(f"{event.step_key}: {_error_text(error) if error else event.message}")
    if not parts and run_failure is not None:
        error = getattr(run_failure.event_specific_data, "error", None)
        parts.append(_error_text(error) if error else (run_failure.message or ""))
    return "; ".join(p for p in parts if p) or "the run failed"


def failure_text(context: dg.RunFailureSensorContext) -> str:
    """What went wrong in the run the sensor context is about."""
    return failure_reason(context.get_step_failure_events(), context.failure_event)


def failed_run_record(
    context: dg.RunFailureSensorContext, redactor: Redactor
) -> tuple[RunRecord, datetime]:
    """The run record of a failed run (and when it ended), from what the Dagster instance
    knows of it; no counts yet."""
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp if record else datetime.now(UTC)
    start = record.start_time if record and record.start_time else created.timestamp()
    end = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
    run_record = RunRecord(
        run_id=run.run_id,
        job=run.job_name,
        trigger=run_trigger(run.tags),
        started_at=datetime.fromtimestamp(start, UTC),
        error=redactor.text(failure_text(context))[:MAX_ERROR_CHARS],
        settings_hash=run.tags.get(SETTINGS_HASH_TAG),  # none if it failed before its op began
    )
    return run_record, datetime.fromtimestamp(end, UTC)


def build_run_failure_sensor(jobs: Sequence[dg.JobDefinition]) -> dg.SensorDefinition:
    """The sensor that gives each failed run of `jobs` its `sync_runs` row if it has none."""

    @dg.run_failure_sensor(
        name="sync_run_failure_sensor",
        monitored_jobs=list(jobs),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "A failed run of a sync or maintenance job -> its sync_runs row (status failure), "
            "unless the run wrote one itself; covers runs that failed before their op started "
            "and runs whose worker was lost (counted from the log rows they wrote)."
        ),
    )
    def sync_run_failure_sensor(
        context: dg.RunFailureSensorContext, settings: SettingsResource
    ) -> dg.SkipReason:
        loaded = settings.load()
        record, ended_at = failed_run_record(context, known_secrets(loaded))
        if has_run_row(loaded.logs.dir, record.run_id, record.started_at):
            return dg.SkipReason(f"run {record.run_id} already has its sync_runs row")
        count_from_log(loaded.logs.dir, record)  # e.g. its worker was lost mid-run
        row = record.row("failure") | {"ended_at": ended_at}
        factory.log_writer(loaded).write("sync_runs", [row])
        return dg.SkipReason(f"wrote the sync_runs failure row of run {record.run_id}")

    return sync_run_failure_sensor
