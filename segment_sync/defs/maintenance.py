"""Maintenance: hourly jobs that compact and trim the logs, and that reconcile the outbound sync.

`log_maintenance_job` applies retention (`logs.retention_days`) and compacts small Parquet files
of every log table, then refreshes the analysts' DuckDB file (a warning, not a failure, when an
analyst holds it open). `outbound_reconcile_job` sends loyalty events of the last
`maintenance.reconcile_lookback_hours` that the sync passed without delivering them.

No `from __future__ import annotations` here: Dagster resolves op parameter types at runtime.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from segment_sync.defs.outbound import count_outbound, outbound_run_metadata, result_metadata
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.tags import STREAM_TAG, TRIGGER_TAG, op_run_record
from segment_sync.logs.maintenance import apply_retention, compact
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import (
    data_files,
    ensure_analytics_db,
    partition_dirs,
)
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.state import StreamBusy
from segment_sync.outbound.sync import OutboundCounts, OutboundFailed, OutboundResult, OutboundSync
from segment_sync.runs import RunRecord

# ---------------------------------------------------------------------------------------------
# Compaction and retention (plain functions; the op below is a thin wrapper)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one log table."""

    table: str
    files_before: int
    files_after: int
    rows_removed: int
    rows_after: int


def table_files(logs_dir: Path | str, table: str) -> list[Path]:
    """The published data files of every partition of `table`."""
    return [path for d in partition_dirs(logs_dir, table) for path in data_files(d)]


def maintain_table(
    logs_dir: Path | str, table: str, cutoff: datetime, min_files: int
) -> TableMaintenance:
    """Remove the rows older than `cutoff`, then merge each partition's small files."""
    before = len(table_files(logs_dir, table))
    removed = apply_retention(logs_dir, table, cutoff)
    compaction = compact(logs_dir, table, min_files=min_files)
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in table_files(logs_dir, table))
    return TableMaintenance(table, before, compaction.files_after, removed, rows)


def maintain_logs(
    logs_dir: Path | str, retention_days: int, min_files: int, now: datetime | None = None
) -> list[TableMaintenance]:
    """Retention and compaction for every log table; rows at or after the cutoff all stay."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return [maintain_table(logs_dir, table, cutoff, min_files) for table in TABLES]


@dg.op(description="Apply log retention, compact small log files, refresh the analysts' views.")
def maintain_log_tables(
    context: dg.OpExecutionContext, settings: SettingsResource
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    loaded = settings.load()
    logs = settings.log_writer()
    with op_run_record(context, logs, []):
        report = maintain_logs(
            loaded.logs.dir, loaded.logs.retention_days, loaded.maintenance.compact_min_files
        )
        for table in report:
            yield dg.AssetObservation(
                asset_key=table.table,
                metadata={
                    "files_before": dg.MetadataValue.int(table.files_before),
                    "files_after": dg.MetadataValue.int(table.files_after),
                    "rows_removed": dg.MetadataValue.int(table.rows_removed),
                    "rows": dg.MetadataValue.int(table.rows_after),
                },
            )
        ensure_analytics_db(loaded.logs.dir)
        analytics = "views refreshed"
    yield dg.Output(
        None,
        metadata={
            "files_before": dg.MetadataValue.int(sum(t.files_before for t in report)),
            "files_after": dg.MetadataValue.int(sum(t.files_after for t in report)),
            "rows_removed": dg.MetadataValue.int(sum(t.rows_removed for t in report)),
            "retention_days": dg.MetadataValue.int(loaded.logs.retention_days),
            "analytics_db": dg.MetadataValue.text(analytics),
            "tables": dg.MetadataValue.md(_table_md(report)),
        },
    )


def _table_md(report: list[TableMaintenance]) -> str:
    lines = [
        "| table | files before | files after | rows removed | rows |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t.table} | {t.files_before} | {t.files_after} | {t.rows_removed} | {t.rows_after} |"
        for t in report
    ]
    return "\n".join(lines)


@dg.job(description="Log retention and compaction for every log table; refreshes the views.")
def log_maintenance_job() -> None:
    maintain_log_tables()


log_maintenance_schedule = dg.ScheduleDefinition(
    name="log_maintenance_schedule",
    job=log_maintenance_job,
    cron_schedule="45 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={TRIGGER_TAG: "schedule"},
    # Hourly, not daily: today's partition gathers a file per chunk, and many small files
    # slow every query (bench/logs.py). Retention is idempotent, so hourly costs nothing.
    description="Hourly at :45: retention, compaction (today too), analysts' views.",
)


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------


@dg.op(
    description="Send loyalty events and profile changes of the last hours that the sync passed "
    "without delivering (e.g. committed out of order behind its watermark); each once."
)
def reconcile_outbound_events(
    context: dg.OpExecutionContext, settings: SettingsResource, segment: SegmentResource
) -> Iterator[dg.AssetMaterialization | dg.Output[None]]:
    loaded = settings.load()
    logs = settings.log_writer()
    lookback = timedelta(hours=loaded.maintenance.reconcile_lookback_hours)
    metadata: dict[str, dg.MetadataValue] = {
        "lookback_hours": dg.MetadataValue.float(loaded.maintenance.reconcile_lookback_hours)
    }
    total = OutboundCounts()
    with op_run_record(context, logs, [segment.write_key]) as (record, redactor):
        sync = OutboundSync(loaded, segment.write_key, logs)
        for stream in (Stream.EVENTS, Stream.PROFILES):
            # Events keep their metadata names; profile changes' are prefixed.
            prefix = "" if stream is Stream.EVENTS else "profiles_"
            try:
                done = reconcile_events(
                    sync, loaded.logs.dir, context.run_id, lookback, stream=stream
                )
            except StreamBusy as busy:
                # The job's tag keeps events runs away, not profiles runs; the next hour retries.
                context.log.warning(f"{stream.value} not reconciled this time: {busy}")
                metadata[f"{prefix}busy"] = dg.MetadataValue.bool(True)
                continue
            except OutboundFailed as failed:
                total.add(failed.result.counts)
                failed.result.counts = total
                count_outbound(record, failed.result)
                record.error = redactor.text(str(failed))
                metadata |= result_metadata(failed.result)
                yield _materialization(loaded.logs.dir, record, failed.result, metadata)
                raise dg.Failure(description=record.error, allow_retries=False) from None
            found = done.found
            metadata |= {
                f"{prefix}{'rows' if prefix else 'events'}_in_window": dg.MetadataValue.int(
                    found.scanned
                ),
                f"{prefix}candidates": dg.MetadataValue.int(found.candidates),
                f"{prefix}undelivered_found": dg.MetadataValue.int(len(found.events)),
                f"{prefix}watermark": dg.MetadataValue.int(found.watermark),
            }
            if done.sent is not None:
                total.add(done.sent.counts)
                done.sent.counts = total
                count_outbound(record, done.sent)
                metadata |= result_metadata(done.sent)
                yield _materialization(loaded.logs.dir, record, done.sent, metadata)
            if found.events:
                ids = ", ".join(str(e.id) for e in found.events[:20])
                more = f" (+{len(found.events) - 20} more)" if len(found.events) > 20 else ""
                context.log.info(
                    f"sent {len(found.events)} undelivered {stream.value}: ids {ids}{more}"
                )
    yield dg.Output(None, metadata=metadata)


def _materialization(
    logs_dir: str, record: RunRecord, result: OutboundResult, metadata: dict[str, dg.MetadataValue]
) -> dg.AssetMaterialization:
    """outbound_log's materialization for a reconciliation that sent something (plotted)."""
    stats = outbound_run_metadata(logs_dir, record, result)
    return dg.AssetMaterialization(asset_key="outbound_log", metadata={**metadata, **stats})


@dg.job(
    description="Outbound reconciliation: undelivered loyalty events and profile changes "
    "behind the watermark -> "
    "Segment.",
    # Never at the same time as an outbound run of the events stream (dagster.yaml limits).
    tags={STREAM_TAG: Stream.EVENTS.value},
)
def outbound_reconcile_job() -> None:
    reconcile_outbound_events()


outbound_reconcile_schedule = dg.ScheduleDefinition(
    name="outbound_reconcile_schedule",
    job=outbound_reconcile_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={TRIGGER_TAG: "schedule"},
    description="Hourly at :15: send loyalty events of the lookback window that were never "
    "delivered.",
)
