"""Outbound: a job that syncs one stream to Segment, and a sensor per stream that starts it.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import (
    OUTBOUND_CALLS,
    STREAM_ASSETS,
    delivery,
    with_sync_runs_written,
    written,
)
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.run_results import run_log_metadata
from segment_sync.defs.tags import (
    DRY_RUN_TAG,
    dry_run_observation,
    fail_run,
    op_run_record,
    report_metadata,
    stopped_follow,
    tag_counts,
)
from segment_sync.directions import allow_list_off
from segment_sync.dry_runs import OutboundDryRun, outbound_dry_run
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.report import run_report
from segment_sync.outbound.results import OutboundFailed, OutboundResult
from segment_sync.outbound.shards import Shard, partition_keys, shard_from_partition
from segment_sync.runs import RunRecord as SyncRunRecord
from segment_sync.signals import FollowStop, first_stop_ends_following

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

    from segment_sync.outbound.sync import OutboundSync
    from segment_sync.settings import Settings


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


def shard_partitions(shards: int) -> dg.StaticPartitionsDefinition | None:
    """One partition per customer shard (`outbound.shards` > 1); none for the whole stream."""
    return dg.StaticPartitionsDefinition(partition_keys(shards)) if shards > 1 else None


def build_outbound_asset(shards: int = 1) -> dg.AssetsDefinition:
    """The outbound multi-asset; with shards, partitioned by shard so each shows on its own."""

    @dg.multi_asset(
        name="sync_outbound_stream",
        specs=OUTBOUND_CALLS,
        can_subset=True,
        partitions_def=shard_partitions(shards),
        description="Send pending loyalty rows of one stream to Segment as Track/Identify batches.",
    )
    def sync_outbound_stream(
        context: dg.AssetExecutionContext,
        config: OutboundConfig,
        settings: SettingsResource,
        segment: SegmentResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
        if config.dry_run:
            yield _dry_run(context, config, settings)
            return
        yield from with_sync_runs_written(
            context.run_id, _sync_outbound(context, config, settings, segment)
        )

    return sync_outbound_stream


def run_shard(context: dg.AssetExecutionContext, shards: int) -> Shard | str:
    """The shard this run sends (its partition), or why it has none."""
    if not context.has_partition_key:
        if shards == 1:
            return Shard()
        return (
            f"outbound.shards is {shards}: launch one shard's partition (shard-0 to "
            f"shard-{shards - 1}), or a backfill over all of them"
        )
    try:
        return shard_from_partition(context.partition_key, shards)
    except ValueError as exc:
        return str(exc)


def _dry_run(
    context: dg.AssetExecutionContext, config: OutboundConfig, settings: SettingsResource
) -> dg.AssetObservation:
    """What the run would send, logged and observed on the stream's asset; nothing sent."""
    stream = selected_stream(config.stream, set(context.selected_asset_keys))
    if not isinstance(stream, Stream):
        fail_run(context.op_execution_context, stream, "configuration")
    plan = outbound_dry_run(settings.load(), [stream])
    return plan_observation(context, plan, STREAM_ASSETS[stream].key)


def plan_observation(
    context: dg.AssetExecutionContext, plan: OutboundDryRun, key: dg.AssetKey
) -> dg.AssetObservation:
    """A dry run's plan of one stream: the run tagged a dry run, the plan logged and observed
    on `key` with what it would send."""
    context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
    [one] = plan.streams or [None]
    counts = (
        {"would_send_messages": one.messages, "would_send_requests": one.requests,
         "would_send_bytes": one.bytes, "would_fail": one.failed}
        if one else {}
    )  # fmt: skip
    return dry_run_observation(key, plan.lines(), context.log, **counts)


def _sync_outbound(
    context: dg.AssetExecutionContext,
    config: OutboundConfig,
    settings: SettingsResource,
    segment: SegmentResource,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    # A generator, so what a failed run sent is materialized too before it fails.
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    op_context = context.op_execution_context
    secrets = [segment.write_key, *loaded.secrets()]
    with op_run_record(op_context, logs, secrets, settings=loaded) as (record, redactor):
        stream = selected_stream(config.stream, set(context.selected_asset_keys))
        off = allow_list_off(loaded, stream) if isinstance(stream, Stream) else stream
        shard = run_shard(context, loaded.outbound.shards)
        off = off or (shard if isinstance(shard, str) else None)
        if off:
            record.error = off
            fail_run(op_context, off, "configuration")
        sync = segment.outbound_sync(loaded, logs, shard)
        result, stopped = send_as_configured(op_context, sync, stream, config, loaded)
        count_outbound(record, result)
        tag_counts(op_context, record)
        report = run_report([result], loaded.logs.dir, context.run_id, record.started_at)
        stats = outbound_run_metadata(loaded.logs.dir, record, result)
        metadata = result_metadata(result) | stats | report_metadata(report) | stopped
        yield delivery(STREAM_ASSETS[stream].key, result.counts.sent, metadata, context)
        yield dg.AssetObservation(asset_key="outbound_log", metadata=stats)
        yield written("outbound_messages", context.run_id)
        if report.failed:
            record.error = redactor.text(report.description)
            fail_run(op_context, record.error, report.kind, metadata)


def send_as_configured(
    op_context: dg.OpExecutionContext,
    sync: "OutboundSync",
    stream: Stream,
    config: OutboundConfig,
    settings: "Settings",
) -> tuple[OutboundResult, dict[str, dg.MetadataValue]]:
    """Send as the run's config says: up to `upto`, or following the stream for
    `outbound.follow_s` until a first stop signal; the result, and the metadata of such a stop."""
    follow_s = settings.outbound.follow_s if config.follow else 0.0
    upto = None if config.follow else config.upto
    stoppable = first_stop_ends_following(sync.stop_following) if config.follow else None
    with stoppable or nullcontext(FollowStop()) as stop:
        try:
            result = sync.run(stream, op_context.run_id, upto, follow_s=follow_s)
        except OutboundFailed as failed:
            result = failed.result
        finally:
            sync.state.close()
    stopped = stopped_follow(op_context, stop.signal, result) if stop.signal else {}
    return result, stopped


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


def build_outbound_job(
    shards: int = 1, executor: dg.ExecutorDefinition | None = None
) -> "UnresolvedAssetJobDefinition":
    """The outbound job (partitioned by shard when `outbound.shards` > 1).

    Its one step runs in the run worker's own process unless `executor` (Celery) says
    otherwise: a stop (Ctrl-C, SIGTERM, a termination from the UI) reaches the step there, which
    ends its follow after the current pass, and the run succeeds with what it delivered; in a
    step subprocess the run worker would record the same stop as an unexpected interruption (a
    failure, retried). It also saves starting a second Python process per run.
    """
    return dg.define_asset_job(
        "outbound_sync_job",
        selection=dg.AssetSelection.keys(*(spec.key for spec in OUTBOUND_CALLS)),
        partitions_def=shard_partitions(shards),
        description="Outbound sync: loyalty events -> Track, profile changes -> Identify, to "
        "Segment.",
        tags={"dagster/max_retries": 3, "dagster/retry_strategy": "FROM_FAILURE"},
        executor_def=executor or dg.in_process_executor,
    )


sync_outbound_stream = build_outbound_asset()
outbound_sync_job = build_outbound_job()
