"""Outbound reconciliation: the hourly job that sends what the sync passed without delivering.

`outbound_reconcile_job` sends loyalty events and profile changes of the last
`maintenance.reconcile_lookback_hours` that have no delivered row (`outbound/reconcile.py` finds
them), e.g. rows committed out of order behind the watermark.

No `from __future__ import annotations` here: Dagster resolves op parameter types at runtime.
"""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from segment_sync import factory
from segment_sync.defs.outbound import count_outbound, outbound_run_metadata, result_metadata
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.schedules import schedule_for
from segment_sync.defs.tags import STREAM_TAG, op_run_record
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.results import OutboundCounts, OutboundFailed, OutboundResult
from segment_sync.outbound.state import StreamBusy
from segment_sync.runs import RunRecord


@dg.op(
    description="Send loyalty events and profile changes of the last hours that the sync passed "
    "without delivering (e.g. committed out of order behind its watermark); each once."
)
def reconcile_outbound_events(
    context: dg.OpExecutionContext, settings: SettingsResource, segment: SegmentResource
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    lookback = timedelta(hours=loaded.maintenance.reconcile_lookback_hours)
    metadata: dict[str, dg.MetadataValue] = {
        "lookback_hours": dg.MetadataValue.float(loaded.maintenance.reconcile_lookback_hours)
    }
    total = OutboundCounts()
    secrets = [segment.write_key, *loaded.secrets()]
    with op_run_record(context, logs, secrets, settings=loaded) as (record, redactor):
        sync = segment.outbound_sync(loaded, logs)
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
                yield _observation(loaded.logs.dir, record, failed.result, metadata)
                raise dg.Failure(description=record.error, allow_retries=False) from None
            found = done.found
            metadata |= {
                f"{prefix}{'rows' if prefix else 'events'}_in_window": dg.MetadataValue.int(
                    found.scanned
                ),
                f"{prefix}candidates": dg.MetadataValue.int(found.candidates),
                f"{prefix}undelivered_found": dg.MetadataValue.int(len(found.events)),
                f"{prefix}unsendable_logged": dg.MetadataValue.int(len(found.unsendable)),
                f"{prefix}watermark": dg.MetadataValue.int(found.watermark),
            }
            if done.sent is not None:
                total.add(done.sent.counts)
                done.sent.counts = total
                count_outbound(record, done.sent)
                metadata |= result_metadata(done.sent)
                yield _observation(loaded.logs.dir, record, done.sent, metadata)
            if found.events:
                ids = ", ".join(str(e.id) for e in found.events[:20])
                more = f" (+{len(found.events) - 20} more)" if len(found.events) > 20 else ""
                context.log.info(
                    f"sent {len(found.events)} undelivered {stream.value}: ids {ids}{more}"
                )
    yield dg.Output(None, metadata=metadata)


def _observation(
    logs_dir: str, record: RunRecord, result: OutboundResult, metadata: dict[str, dg.MetadataValue]
) -> dg.AssetObservation:
    """outbound_log's observation for a reconciliation that sent something (plotted)."""
    stats = outbound_run_metadata(logs_dir, record, result)
    return dg.AssetObservation(asset_key="outbound_log", metadata={**metadata, **stats})


@dg.job(
    description="Outbound reconciliation: undelivered loyalty events and profile changes "
    "behind the watermark -> "
    "Segment.",
    # Never at the same time as an outbound run of the events stream (dagster.yaml limits).
    tags={STREAM_TAG: Stream.EVENTS.value},
)
def outbound_reconcile_job() -> None:
    reconcile_outbound_events()


outbound_reconcile_schedule = schedule_for(
    outbound_reconcile_job,
    "15 * * * *",
    "Hourly at :15: send loyalty events of the lookback window that were never delivered.",
)
