"""Outbound reconciliation: the hourly job that sends what the sync passed without delivering.

`outbound_reconcile_job` sends loyalty events and profile changes of the last
`maintenance.reconcile_lookback_hours` that have no delivered row (`outbound/reconcile.py` finds
them), e.g. rows committed out of order behind the watermark. With `outbound.destinations`,
each destination in turn, looking only at the rows routed to it (`build_reconcile_job`).

No `from __future__ import annotations` here: Dagster resolves op parameter types at runtime.
"""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from segment_sync import factory
from segment_sync.defs.destinations import resource_key
from segment_sync.defs.outbound import count_outbound, outbound_run_metadata, result_metadata
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.schedules import schedule_for
from segment_sync.defs.tags import STREAM_TAG, fail_run, op_run_record, report_metadata
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.report import RunReport, run_report
from segment_sync.outbound.results import OutboundCounts, OutboundFailed, OutboundResult
from segment_sync.outbound.state import StreamBusy
from segment_sync.runs import RunRecord
from segment_sync.settings import Settings

_DESCRIPTION = (
    "Send loyalty events and profile changes of the last hours that the sync passed "
    "without delivering (e.g. committed out of order behind its watermark); each once."
)


@dg.op(description=_DESCRIPTION)
def reconcile_outbound_events(
    context: dg.OpExecutionContext, settings: SettingsResource, segment: SegmentResource
) -> Iterator[dg.Output[None]]:
    yield from _reconcile(context, settings.load(), [(None, segment.write_key)])


def _routed_op(names: list[str]) -> dg.OpDefinition:
    """The same op for `outbound.destinations`: each destination in turn, with its own write
    key resource (`segment_eu`), looking only at the rows routed to it."""

    @dg.op(
        name="reconcile_outbound_events",
        description=_DESCRIPTION + " Per Segment destination: " + ", ".join(names) + ".",
        required_resource_keys={"settings", *(resource_key(n) for n in names)},
    )
    def reconcile_routed(
        context: dg.OpExecutionContext,
    ) -> Iterator[dg.Output[None]]:
        loaded = context.resources.settings.load()
        keys = [getattr(context.resources, resource_key(n)).write_key for n in names]
        yield from _reconcile(context, loaded, list(zip(names, keys, strict=True)))

    return reconcile_routed


def _reconcile(
    context: dg.OpExecutionContext, loaded: Settings, served: list[tuple[str | None, str]]
) -> Iterator[dg.Output[None]]:
    """Reconcile each (destination, write key) in turn; a destination whose sending fails
    stops, the others go on, and the op fails at the end naming it. A run that logged messages
    as failed or pending fails too, with the kind and reasons an outbound run gives."""
    logs = factory.log_writer(loaded)
    lookback = timedelta(hours=loaded.maintenance.reconcile_lookback_hours)
    metadata: dict[str, dg.MetadataValue] = {
        "lookback_hours": dg.MetadataValue.float(loaded.maintenance.reconcile_lookback_hours)
    }
    total = OutboundCounts()
    errors: list[str] = []
    results: list[OutboundResult] = []  # every destination's and stream's, sent or stopped
    secrets = [*(key for _, key in served), *loaded.secrets()]
    with op_run_record(context, logs, secrets, settings=loaded) as (record, redactor):
        for name, key in served:
            sync = factory.outbound_sync(loaded.for_destination(name), key, logs)
            at = "" if name is None else f"{name}_"  # eu_undelivered_found, ...
            for stream in (Stream.EVENTS, Stream.PROFILES):
                # Events keep their metadata names; profile changes' are prefixed.
                prefix = at + ("" if stream is Stream.EVENTS else "profiles_")
                where = stream.value if name is None else f"{stream.value}@{name}"
                try:
                    done = reconcile_events(
                        sync, loaded.logs.dir, context.run_id, lookback, stream=stream
                    )
                except StreamBusy as busy:
                    # The job's tag keeps events runs away, not profiles runs; the next hour
                    # retries.
                    context.log.warning(f"{where} not reconciled this time: {busy}")
                    metadata[f"{prefix}busy"] = dg.MetadataValue.bool(True)
                    continue
                except OutboundFailed as failed:
                    total.add(failed.result.counts)
                    failed.result.counts = total
                    results.append(failed.result)
                    count_outbound(record, failed.result)
                    error = redactor.text(str(failed)) or ""
                    errors.append(error if name is None else f"destination {name}: {error}")
                    metadata |= result_metadata(failed.result)
                    yield _observation(loaded.logs.dir, record, failed.result, metadata)
                    break  # this destination stops here; the others are still reconciled
                found = done.found
                metadata |= {
                    f"{prefix}{'rows' if prefix != at else 'events'}_in_window": (
                        dg.MetadataValue.int(found.scanned)
                    ),
                    f"{prefix}candidates": dg.MetadataValue.int(found.candidates),
                    f"{prefix}undelivered_found": dg.MetadataValue.int(len(found.events)),
                    f"{prefix}unsendable_logged": dg.MetadataValue.int(len(found.unsendable)),
                    f"{prefix}watermark": dg.MetadataValue.int(found.watermark),
                }
                if done.sent is not None:
                    total.add(done.sent.counts)
                    done.sent.counts = total
                    results.append(done.sent)
                    count_outbound(record, done.sent)
                    metadata |= result_metadata(done.sent)
                    yield _observation(loaded.logs.dir, record, done.sent, metadata)
                if found.events:
                    ids = ", ".join(str(e.id) for e in found.events[:20])
                    more = f" (+{len(found.events) - 20} more)" if len(found.events) > 20 else ""
                    context.log.info(
                        f"sent {len(found.events)} undelivered {where}: ids {ids}{more}"
                    )
        report = run_report(results, loaded.logs.dir, context.run_id, record.started_at)
        if report.failed or errors:
            record.error = redactor.text(_failure_text(errors, report)) or ""
            fail_run(context, record.error, report.kind, metadata | report_metadata(report))
    yield dg.Output(None, metadata=metadata)


def _failure_text(stopped: list[str], report: RunReport) -> str:
    """The run's verdict (counts, kind, top reasons), the destinations that stopped first."""
    if not stopped:
        return report.description
    parts = ["; ".join(stopped), report.headline]
    if report.reasons:
        parts.append("top reasons: " + "; ".join(f"{n} x {r}" for r, n in report.reasons))
    return ". ".join(parts)


def _observation(
    logs_dir: str, record: RunRecord, result: OutboundResult, metadata: dict[str, dg.MetadataValue]
) -> dg.AssetObservation:
    """outbound_log's observation for a reconciliation that sent something (plotted)."""
    stats = outbound_run_metadata(logs_dir, record, result)
    return dg.AssetObservation(asset_key="outbound_log", metadata={**metadata, **stats})


_JOB = {
    "name": "outbound_reconcile_job",
    "description": "Outbound reconciliation: undelivered loyalty events and profile changes "
    "behind the watermark -> Segment.",
    # Never at the same time as an outbound run of the events stream (dagster.yaml limits).
    "tags": {STREAM_TAG: Stream.EVENTS.value},
}


@dg.job(**_JOB)
def outbound_reconcile_job() -> None:
    reconcile_outbound_events()


def build_reconcile_job(settings: Settings) -> dg.JobDefinition:
    """`outbound_reconcile_job` for these settings: with `outbound.destinations`, its op
    reconciles every destination in one run (one sync_runs row, per-destination metadata)."""
    if not settings.outbound.destinations:
        return outbound_reconcile_job
    op = _routed_op([d.name for d in settings.outbound.destinations])

    @dg.job(**_JOB)
    def routed() -> None:
        op()

    return routed


def reconcile_schedule(job: dg.JobDefinition) -> dg.ScheduleDefinition:
    return schedule_for(
        job,
        "15 * * * *",
        "Hourly at :15: send loyalty events of the lookback window that were never delivered.",
    )


outbound_reconcile_schedule = reconcile_schedule(outbound_reconcile_job)
