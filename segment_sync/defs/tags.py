"""Run tags the code location sets and reads, and the run record every op keeps."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn

import dagster as dg

from segment_sync.logs.incomplete import failure_kind
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.outbound.report import RunReport
from segment_sync.outbound.results import OutboundResult
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, recorded_run
from segment_sync.settings import Settings
from segment_sync.settings.hash import settings_hash

TRIGGER_TAG = "segment_sync/trigger"
STREAM_TAG = "segment_sync/stream"
# transient | permanent | configuration, set on a failed run (see outbound/report.py)
FAILURE_KIND_TAG = "segment_sync/failure_kind"
# The run's message counts, set when it has them, so the runs list shows them.
SENT_TAG = "segment_sync/sent"
FAILED_TAG = "segment_sync/failed"
SKIPPED_TAG = "segment_sync/skipped"
DRY_RUN_TAG = "segment_sync/dry_run"
# The store's newest row id when a sensor requested the run: its successor needs newer rows.
NEWEST_TAG = "segment_sync/newest_at_request"
# The signal that ended a follow run after its current pass (SIGINT, SIGTERM).
STOPPED_BY_TAG = "segment_sync/stopped_by"
# Which settings the run used (settings/hash.py), also in its sync_runs row.
SETTINGS_HASH_TAG = "segment_sync/settings_hash"
# Dagster's own: False stops the run-retry daemon from re-executing an op failure.
RETRY_ON_OP_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


def run_trigger(tags: Mapping[str, str]) -> str:
    """sensor | schedule | manual, from a run's tags."""
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/schedule_name" in tags:
        return "schedule"
    return "manual"


@contextmanager
def op_run_record(
    context: dg.OpExecutionContext, logs: LogWriter, secrets: Iterable[str], *, settings: Settings
) -> Iterator[tuple[RunRecord, Redactor]]:
    """The op's `sync_runs` row (written on the way out, whatever happens) and its redactor.

    The row and a run tag say which `settings` the run used. An unwritable logs.dir fails the
    op with its one-line reason, not a stack trace.
    """
    redactor = Redactor(secrets)
    record = RunRecord(context.run_id, context.job_name, run_trigger(context.run.tags))
    record.settings_hash = settings_hash(settings)
    context.instance.add_run_tags(context.run_id, {SETTINGS_HASH_TAG: record.settings_hash})
    try:
        with recorded_run(logs, record, redactor):
            yield record, redactor
    except LogWriteError as exc:  # its cause decides: a person fixes a refusal (not retried),
        fail_run(context, str(exc), failure_kind(exc))  # a network blip or SlowDown is retried


def fail_run(
    context: dg.OpExecutionContext,
    description: str,
    kind: str | None,
    metadata: Mapping[str, dg.MetadataValue] | None = None,
) -> NoReturn:
    """Fail the op with `description` (no stack trace); only a transient failure is retried.

    The failure kind goes on the run as a tag before the failure is reported, so the run-retry
    daemon (which reads the run's tags when the run fails) and the sensors see it.
    """
    tags = {FAILURE_KIND_TAG: kind or "transient"}
    retryable = kind in (None, "transient")
    if not retryable:
        tags[RETRY_ON_OP_FAILURE_TAG] = "false"
    context.instance.add_run_tags(context.run_id, tags)
    context.log.error(description)
    raise dg.Failure(description=description, metadata=metadata, allow_retries=retryable)


def tag_counts(context: dg.OpExecutionContext, record: RunRecord) -> None:
    """Put the run's sent, failed and skipped counts on it as tags (the runs list shows tags)."""
    counts = {
        SENT_TAG: record.messages_sent,
        FAILED_TAG: record.messages_failed,
        SKIPPED_TAG: record.messages_skipped,
    }
    context.instance.add_run_tags(context.run_id, {k: str(v) for k, v in counts.items()})


def stopped_follow(
    context: dg.OpExecutionContext, signal_name: str, result: OutboundResult
) -> dict[str, dg.MetadataValue]:
    """A follow run stopped by a signal ended after its current pass: say so on the run."""
    context.instance.add_run_tags(context.run_id, {STOPPED_BY_TAG: signal_name})
    context.log.info(
        f"stopped by {signal_name}: ended the follow after its current pass, "
        f"{result.counts.sent} message(s) delivered, progress saved up to id "
        f"{result.watermark_after}; the sensor starts the next run when there is work"
    )
    return {"stopped_by": dg.MetadataValue.text(signal_name)}


def dry_run_observation(
    key: dg.AssetKey, lines: list[str], log: logging.Logger, **counts: int
) -> dg.AssetObservation:
    """A dry run's summary: each line in the run's log, its numbers on the asset it would have
    materialized (an observation: nothing was materialized)."""
    for line in lines:
        log.info(line)
    metadata = {name: dg.MetadataValue.int(n) for name, n in counts.items()}
    summary = "\n".join(lines)
    return dg.AssetObservation(
        asset_key=key, metadata=metadata | {"summary": dg.MetadataValue.md(f"```\n{summary}\n```")}
    )


def report_metadata(report: RunReport) -> dict[str, dg.MetadataValue]:
    """A failed run's verdict and top reasons, for the run's page."""
    if not report.failed:
        return {}
    lines = "\n".join(report.reason_lines())
    return {
        "failure_kind": dg.MetadataValue.text(str(report.kind)),
        "messages_pending": dg.MetadataValue.int(report.counts.pending),
        "top_reasons": dg.MetadataValue.md(f"```\n{lines}\n```"),
    }
