"""Log maintenance: the hourly job that trims and compacts the logs and refreshes the views.

`log_maintenance_job` applies retention (`logs.retention_days`) and compacts small Parquet files
of every log table (`logs/maintenance.py` does both), then refreshes the analysts' DuckDB file.
With several destinations it also forgets the routing decisions older than the retention.

No `from __future__ import annotations` here: Dagster resolves op parameter types at runtime.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from segment_sync import factory
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.schedules import schedule_for
from segment_sync.defs.tags import fail_run, op_run_record
from segment_sync.logs.incomplete import MaintenanceIncomplete, describe, failure_kind
from segment_sync.logs.maintenance import TableMaintenance, maintain_logs
from segment_sync.logs.store import LogWriteError
from segment_sync.logs.views import ObjectStoreLogs, ensure_analytics_db
from segment_sync.outbound.route_decisions import prune_decisions
from segment_sync.redaction import error_kind
from segment_sync.settings import Settings

# A table another maintainer holds is not waited for (logs/maintenance.py BUSY_WAIT_S).
BUSY_NOTE = (
    "busy (another maintenance run or a sync run's merge holds it): skipped, the next run "
    "maintains it"
)


@dg.op(description="Apply log retention, compact small log files, refresh the analysts' views.")
def maintain_log_tables(
    context: dg.OpExecutionContext, settings: SettingsResource
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    loaded = settings.load()
    try:
        logs = factory.log_writer(loaded)
    except LogWriteError as exc:  # logs.dir itself refuses (permissions, a file in its path)
        fail_run(context, str(exc), failure_kind(exc))
    with op_run_record(context, logs, loaded.secrets(), settings=loaded) as (record, _):
        # Every problem is told at once: failing on the first would hide the damaged files
        # already moved aside, which no later run reports again.
        problems: list[str] = []
        left: list[Path] = []  # files moved aside by tables that then failed
        kind = "transient"
        try:
            report = maintain_logs(
                loaded.logs.dir, loaded.logs.retention_days, loaded.maintenance.compact_min_files
            )
        except MaintenanceIncomplete as exc:  # the other tables were maintained: report them
            report, left, kind = exc.report, exc.quarantined, exc.kind
            problems.append(str(exc))
        moved = [*(path for table in report for path in table.quarantined), *left]
        for table in report:  # what was done, also when the run then fails
            if table.busy:  # not counted: its holder is changing its files
                context.log.warning(f"{table.table}: {BUSY_NOTE}")
                continue
            yield dg.AssetObservation(
                asset_key=table.table,
                metadata={
                    "files_before": dg.MetadataValue.int(table.files_before),
                    "files_after": dg.MetadataValue.int(table.files_after),
                    "rows_removed": dg.MetadataValue.int(table.rows_removed),
                    "rows": dg.MetadataValue.int(table.rows_after),
                },
            )
        # A person must act (credentials, a bucket, permissions, a full disk): not retried
        # into the same refusal. No input file was deleted.
        if kind == "configuration":
            if moved:
                problems.append(quarantine_message(moved))
            record.error = "; ".join(problems)
            paths = {"quarantined": _paths_md(moved)} if moved else None  # each one named
            fail_run(context, record.error, "configuration", paths)
        decisions_removed, prune_error = _prune_route_decisions(loaded)
        try:
            ensure_analytics_db(loaded.logs.dir)
            analytics = "views refreshed"
        except ObjectStoreLogs:  # views over S3 are defined per session (s3_views.py)
            analytics = "none on object storage: segment-sync logs sql reads the logs"
        # The logs were maintained; the next run refreshes the views. DuckDB's own I/O errors
        # (a full disk) are no OSError: uncaught, they hid the files moved aside above.
        except (OSError, duckdb.Error) as exc:
            analytics = "not refreshed"
            problems.append(f"could not refresh the analysts' views ({describe(exc)})")
        if prune_error:  # the logs were maintained; the decisions are pruned by the next run
            problems.append(prune_error)
        if moved:  # the work is done; a person should still look at the damaged files
            problems.append(quarantine_message(moved))
        if problems:
            record.error = "; ".join(problems)
            if moved:  # not retried: a person looks at the files; the next hourly run goes on
                fail_run(context, record.error, "permanent", {"quarantined": _paths_md(moved)})
            fail_run(context, record.error, "transient")
    yield dg.Output(
        None,
        metadata={
            "files_before": dg.MetadataValue.int(sum(t.files_before for t in report)),
            "files_after": dg.MetadataValue.int(sum(t.files_after for t in report)),
            "rows_removed": dg.MetadataValue.int(sum(t.rows_removed for t in report)),
            "retention_days": dg.MetadataValue.int(loaded.logs.retention_days),
            "route_decisions_removed": dg.MetadataValue.int(decisions_removed),
            "analytics_db": dg.MetadataValue.text(analytics),
            "tables": dg.MetadataValue.md(_table_md(report)),
            "busy_tables": dg.MetadataValue.text(
                ", ".join(t.table for t in report if t.busy) or "none"
            ),
        },
    )


def _prune_route_decisions(settings: Settings) -> tuple[int, str | None]:
    """(decisions removed, why none could be): only with several destinations."""
    if not settings.outbound.destinations:
        return 0, None
    try:
        return prune_decisions(settings.outbound.state_url, settings.logs.retention_days), None
    except Exception as exc:  # noqa: BLE001 - reported as the run's failure, after the logs
        return 0, (
            "could not prune the routing decisions in outbound.state_url "
            f"({error_kind(exc)}); the logs were maintained, and the next run prunes them"
        )


def quarantine_message(moved: list[Path]) -> str:
    """Why a maintenance run that moved damaged log files aside fails."""
    return (
        f"moved {len(moved)} unreadable log file(s) to {moved[0].parents[2]}, out of the log "
        f"views (first: {moved[0]}); every readable file was maintained and the views work "
        "again. Their rows are not in the views: inspect the files, restore them from a backup "
        "into logs.dir, or delete them"
    )


def _paths_md(paths: list[Path]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- `{path}`" for path in paths))


def _table_md(report: list[TableMaintenance]) -> str:
    lines = [
        "| table | files before | files after | rows removed | rows |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t.table} | {t.files_before} | {BUSY_NOTE} | | |"
        if t.busy
        else f"| {t.table} | {t.files_before} | {t.files_after} | {t.rows_removed} | {t.rows_after} |"
        for t in report
    ]
    return "\n".join(lines)


@dg.job(description="Log retention and compaction for every log table; refreshes the views.")
def log_maintenance_job() -> None:
    maintain_log_tables()


# Hourly, not daily: today's partition gathers a file per chunk, and many small files slow
# every query (bench/logs.py). Retention is idempotent, so hourly costs nothing.
log_maintenance_schedule = schedule_for(
    log_maintenance_job,
    "45 * * * *",
    "Hourly at :45: retention, compaction (today too), analysts' views.",
)
