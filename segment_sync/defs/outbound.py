"""Outbound: a job that syncs one stream to Segment, and a sensor per stream that starts it.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

import time
from collections.abc import Iterator

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import (
    OUTBOUND_CALLS,
    STREAM_ASSETS,
    with_sync_runs_written,
    written,
)
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.run_results import run_log_metadata
from segment_sync.defs.tags import (
    DRY_RUN_TAG,
    FAILURE_KIND_TAG,
    STREAM_TAG,
    TRIGGER_TAG,
    dry_run_observation,
    fail_run,
    op_run_record,
    report_metadata,
    tag_counts,
)
from segment_sync.directions import allow_list_off, stream_off
from segment_sync.dry_runs import outbound_dry_run
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.report import run_report
from segment_sync.outbound.results import OutboundFailed, OutboundResult
from segment_sync.runs import RunRecord as SyncRunRecord
from segment_sync.settings import Settings

SENSOR_INTERVAL_S = 15
# A follow run's successor is requested this long before the window ends: a tick and a launch.
HANDOVER_LEAD_S = 2 * SENSOR_INTERVAL_S + 15


class OutboundConfig(dg.Config):
    """Which stream to send, and up to which source row id (default: everything pending now).

    `stream`: default, the stream of the one selected asset (`segment_track_calls` -> events,
    `segment_identify_calls` -> profiles), or events. `follow`: after that, keep sending rows
    as they commit for `outbound.follow_s` (the sensor's runs do), then exit so the sensor
    starts the next run. `dry_run`: log what would be sent; nothing sent or moved.
    """

    stream: Stream | None = None
    upto: int | None = None
    follow: bool = False
    dry_run: bool = False  # only report what would be sent (up to the newest row); send nothing


def selected_stream(configured: Stream | None, selected: set[dg.AssetKey]) -> Stream | str:
    """The stream a run sends, or why the config and the asset selection disagree."""
    streams = [s for s, spec in STREAM_ASSETS.items() if spec.key in selected]
    if configured is None:
        return streams[0] if len(streams) == 1 else Stream.EVENTS
    if configured in streams:
        return configured
    wanted = STREAM_ASSETS[configured].key.to_user_string()
    return (
        f"the run's config sends the {configured.value} stream, but its asset selection does "
        f"not include {wanted}: select {wanted}, or drop `stream` from the config"
    )


def result_metadata(result: OutboundResult) -> dict[str, dg.MetadataValue]:
    c = result.counts
    return {
        "stream": dg.MetadataValue.text(result.stream.value),
        "messages_sent": dg.MetadataValue.int(c.sent),
        "messages_failed": dg.MetadataValue.int(c.failed),
        "messages_skipped": dg.MetadataValue.int(c.skipped),
        "messages_pending": dg.MetadataValue.int(c.pending),
        "not_allow_listed": dg.MetadataValue.int(c.not_allow_listed),
        "requests": dg.MetadataValue.int(c.requests),
        "retries": dg.MetadataValue.int(c.retries),
        "bytes": dg.MetadataValue.int(c.bytes),
        "rows_read": dg.MetadataValue.int(c.rows_read),
        "delivered_upto": dg.MetadataValue.int(result.watermark_after),
        "store_polls_with_rows": dg.MetadataValue.int(result.passes),
    } | _latency_metadata(result)


def _latency_metadata(result: OutboundResult) -> dict[str, dg.MetadataValue]:
    """Event time -> Segment 2xx of the run's delivered messages (plotted per run)."""
    p50, p95 = result.latency_s(0.5), result.latency_s(0.95)
    if p95 is None:
        return {}
    return {
        "delivery_latency_p50_s": dg.MetadataValue.float(round(p50, 3)),
        "delivery_latency_p95_s": dg.MetadataValue.float(round(p95, 3)),
    }


@dg.multi_asset(
    name="sync_outbound_stream",
    specs=OUTBOUND_CALLS,
    can_subset=True,
    description="Send pending loyalty rows of one stream to Segment as Track/Identify batches.",
)
def sync_outbound_stream(
    context: dg.AssetExecutionContext,
    config: OutboundConfig,
    settings: SettingsResource,
    segment: SegmentResource,
) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult | dg.AssetObservation]:
    if config.dry_run:
        yield _dry_run(context, config, settings)
        return
    yield from with_sync_runs_written(
        context.run_id, _sync_outbound(context, config, settings, segment)
    )


def _dry_run(
    context: dg.AssetExecutionContext, config: OutboundConfig, settings: SettingsResource
) -> dg.AssetObservation:
    """What the run would send, logged and observed on the stream's asset; nothing sent."""
    stream = selected_stream(config.stream, set(context.selected_asset_keys))
    if not isinstance(stream, Stream):
        fail_run(context.op_execution_context, stream, "configuration")
    plan = outbound_dry_run(settings.load(), [stream])
    context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
    [one] = plan.streams or [None]
    counts = (
        {"would_send_messages": one.messages, "would_send_requests": one.requests,
         "would_send_bytes": one.bytes, "would_fail": one.failed}
        if one else {}
    )  # fmt: skip
    return dry_run_observation(STREAM_ASSETS[stream].key, plan.lines(), context.log, **counts)


def _sync_outbound(
    context: dg.AssetExecutionContext,
    config: OutboundConfig,
    settings: SettingsResource,
    segment: SegmentResource,
) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult]:
    # A generator, so what a failed run sent is materialized too before it fails.
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    op_context = context.op_execution_context
    with op_run_record(op_context, logs, [segment.write_key]) as (record, redactor):
        stream = selected_stream(config.stream, set(context.selected_asset_keys))
        off = allow_list_off(loaded, stream) if isinstance(stream, Stream) else stream
        if off:
            record.error = off
            fail_run(op_context, off, "configuration")
        sync = segment.outbound_sync(loaded, logs)
        follow_s = loaded.outbound.follow_s if config.follow else 0.0
        upto = None if config.follow else config.upto
        try:
            result = sync.run(stream, context.run_id, upto, follow_s=follow_s)
        except OutboundFailed as failed:
            result = failed.result
        count_outbound(record, result)
        tag_counts(op_context, record)
        report = run_report([result], loaded.logs.dir, context.run_id, record.started_at)
        stats = outbound_run_metadata(loaded.logs.dir, record, result)
        metadata = result_metadata(result) | stats | report_metadata(report)
        yield dg.MaterializeResult(asset_key=STREAM_ASSETS[stream].key, metadata=metadata)
        yield dg.AssetMaterialization(asset_key="outbound_log", metadata=stats)
        yield written("outbound_messages", context.run_id)
        if report.failed:
            record.error = redactor.text(report.description)
            fail_run(op_context, record.error, report.kind, metadata)


def outbound_run_metadata(
    logs_dir: str, record: SyncRunRecord, result: OutboundResult
) -> dict[str, dg.MetadataValue]:
    """The run's error rate and its own requests' count, failures and p95 response time."""
    c = result.counts
    return run_log_metadata(
        logs_dir,
        "outbound_log",
        record.run_id,
        record.started_at,
        delivered=c.sent,
        undelivered=c.failed + c.pending,
    )


def count_outbound(record: SyncRunRecord, result: OutboundResult) -> None:
    """The run record's counts (and error) from an outbound result."""
    c = result.counts
    record.count(c.sent, c.failed, c.skipped, c.requests, c.bytes)
    record.error = result.error


outbound_sync_job = dg.define_asset_job(
    "outbound_sync_job",
    selection=dg.AssetSelection.keys(*(spec.key for spec in OUTBOUND_CALLS)),
    description="Outbound sync: loyalty events -> Track, profile changes -> Identify, to Segment.",
    tags={"dagster/max_retries": 3, "dagster/retry_strategy": "FROM_FAILURE"},
)


def _run_request(stream: Stream, upto: int | None, run_key: str) -> dg.RunRequest:
    config = OutboundConfig(stream=stream, upto=upto, follow=True)
    return dg.RunRequest(
        run_key=run_key,
        run_config=dg.RunConfig(ops={"sync_outbound_stream": config}),
        asset_selection=[STREAM_ASSETS[stream].key],
        tags={TRIGGER_TAG: "sensor", STREAM_TAG: stream.value},
    )


_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _active_runs(context: dg.SensorEvaluationContext, stream: Stream) -> list[dg.RunRecord]:
    """Queued or running outbound runs of this stream, newest first."""
    return list(
        context.instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=outbound_sync_job.name, tags={STREAM_TAG: stream.value}, statuses=_ACTIVE
            ),
            limit=2,
        )
    )


def _while_active(
    stream: Stream, active: list[dg.RunRecord], follow_s: float
) -> dg.RunRequest | dg.SkipReason:
    """A run is sending: wait, or start its successor early so the hand-over costs no launch.

    The successor starts up to HANDOVER_LEAD_S before the sender's follow window ends and waits
    on the stream's lock, which the sender holds until its last pass is logged.
    """
    sender = active[-1]
    run_id = sender.dagster_run.run_id
    if len(active) > 1:
        return dg.SkipReason(
            f"run {run_id} is sending new {stream.value} as they commit; run "
            f"{active[0].dagster_run.run_id} takes over when it ends"
        )
    if successor_due(sender.start_time, follow_s, time.time()):
        return _run_request(stream, None, f"{stream.value}-after-{run_id}")
    return dg.SkipReason(
        f"run {run_id} ({sender.dagster_run.status.value.lower()}) is sending new "
        f"{stream.value} as they commit; its successor starts about "
        f"{handover_lead_s(follow_s):.0f}s before its follow window ends"
    )


def handover_lead_s(follow_s: float) -> float:
    """How early a follow run's successor is requested: a tick and a launch, at most half."""
    return min(HANDOVER_LEAD_S, follow_s / 2)


def successor_due(started: float | None, follow_s: float, now: float) -> bool:
    """Is it time to start the successor of a follow run that started at `started`?"""
    if follow_s <= 0 or started is None:
        return False
    return now >= started + follow_s - handover_lead_s(follow_s)


def _watermark(loaded: Settings, stream: Stream) -> int:
    state = factory.outbound_state(loaded, loaded.write_key())
    try:
        return state.watermark(stream)
    finally:
        state.close()


def _retry_request(
    context: dg.SensorEvaluationContext, stream: Stream, loaded: Settings, newest: int
) -> dg.RunRequest | dg.SkipReason:
    """Nothing new: start one more run for rows a failed run (and its retries) left pending."""
    outbound = loaded.outbound
    watermark = _watermark(loaded, stream)
    if watermark >= newest:
        return dg.SkipReason(f"no {stream.value} newer than id {newest}; all handled up to it")
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=outbound_sync_job.name, tags={STREAM_TAG: stream.value}),
        limit=1,
    )
    last = records[0] if records else None
    if last is None or last.dagster_run.status != dg.DagsterRunStatus.FAILURE:
        return dg.SkipReason(f"{newest - watermark} {stream.value} row(s) pending; a run has them")
    kind = last.dagster_run.tags.get(FAILURE_KIND_TAG)
    if kind in ("permanent", "configuration"):
        return dg.SkipReason(
            f"{newest - watermark} {stream.value} row(s) pending after failed run "
            f"{last.dagster_run.run_id}, which a retry cannot heal ({kind}); fix what its "
            "error names, then launch outbound_sync_job (or `segment-sync run outbound`); "
            "a new row also starts a run"
        )
    waited = time.time() - (last.end_time or 0)
    if waited < outbound.retry_failed_after_s:
        return dg.SkipReason(
            f"{newest - watermark} {stream.value} row(s) pending after failed run "
            f"{last.dagster_run.run_id}; retrying in {outbound.retry_failed_after_s - waited:.0f}s"
        )
    return _run_request(stream, newest, f"{stream.value}-retry-after-{last.dagster_run.run_id}")


def stream_sensor(stream: Stream) -> dg.SensorDefinition:
    """An outbound run for rows newer than the cursor, or again for rows a failed run left."""

    @dg.sensor(
        name=f"outbound_{stream.value}_sensor",
        job=outbound_sync_job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New loyalty {stream.value} -> an outbound run for them (cursor: last row id requested).",
    )
    def _sensor(context: dg.SensorEvaluationContext, settings: SettingsResource):
        loaded = settings.load()
        off = stream_off(loaded, stream)
        if off:  # no run, and the cursor stays: rows are not passed while the stream is off
            return dg.SkipReason(off)
        store = factory.loyalty_store(loaded)
        cursor = int(context.cursor or 0)
        try:
            newest = store.max_id(stream, floor=cursor)  # never past an id that may still commit
        finally:
            store.close()
        active = _active_runs(context, stream)
        if active:  # it sends these rows (or its successor will); the cursor waits for it
            return _while_active(stream, active, loaded.outbound.follow_s)
        if newest > cursor:
            context.update_cursor(str(newest))
            if _watermark(loaded, stream) >= newest:
                return dg.SkipReason(f"{stream.value} up to id {newest} already sent")
            return _run_request(stream, newest, f"{stream.value}-upto-{newest}")
        return _retry_request(context, stream, loaded, newest)

    return _sensor


outbound_sensors = [stream_sensor(Stream.EVENTS), stream_sensor(Stream.PROFILES)]
