"""Outbound with several Segment destinations (`outbound.destinations`): an asset per
destination and stream, the job that materializes them, and a sensor per destination and stream.

An asset per destination, not a partition dimension: each destination is its own Segment source
in its own workspace and region, so its Track and Identify calls are their own data. Each asset
keeps its own materializations, metadata plots (sent, failed, latency), failures and lineage,
so a data engineer sees EU and US deliveries apart at a glance, and the shard partitions
(`outbound.shards`) stay the only partition dimension.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

from collections.abc import Iterator

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import (
    LOYALTY_EVENTS_KEY,
    LOYALTY_PROFILE_CHANGES_KEY,
    OUTBOUND_GROUP,
    delivery,
    with_sync_runs_written,
    written,
)
from segment_sync.defs.outbound import (
    OutboundConfig,
    count_outbound,
    outbound_run_metadata,
    plan_observation,
    result_metadata,
    run_shard,
    send_as_configured,
    shard_partitions,
)
from segment_sync.defs.outbound_sensors import SensorTarget, build_outbound_sensors
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.tags import (
    fail_run,
    op_run_record,
    report_metadata,
    tag_counts,
)
from segment_sync.directions import allow_list_off
from segment_sync.dry_runs import outbound_dry_run
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.report import run_report
from segment_sync.settings import Settings

JOB_NAME = "outbound_destinations_job"
OP_NAME = "sync_outbound_destination"
_CALLS = {Stream.EVENTS: ("track", LOYALTY_EVENTS_KEY), Stream.PROFILES: ("identify", LOYALTY_PROFILE_CHANGES_KEY)}  # fmt: skip


def asset_key(destination: str, stream: Stream) -> dg.AssetKey:
    """`segment_track_calls_eu`: one destination's calls of one stream."""
    return dg.AssetKey(f"segment_{_CALLS[stream][0]}_calls_{destination}")


def resource_key(destination: str) -> str:
    """The resource holding one destination's write key (`segment_eu`)."""
    return f"segment_{destination.replace('-', '_')}"


def destination_specs(settings: Settings) -> list[dg.AssetSpec]:
    """Two assets per destination: its Track calls and its Identify calls."""
    specs = []
    for d in settings.outbound.destinations:
        for stream, (call, source) in _CALLS.items():
            specs.append(
                dg.AssetSpec(
                    asset_key(d.name, stream),
                    deps=[source],
                    group_name=OUTBOUND_GROUP,
                    kinds={"segment"},
                    skippable=True,
                    tags={"destination": d.name, "region": d.region},
                    description=f"Segment {call.capitalize()} calls of the customers routed to "
                    f"destination {d.name} (region {d.region}) by their "
                    f"{settings.outbound.route_by.attribute}.",
                )
            )
    return specs


def log_table_specs(settings: Settings, tables: list[dg.AssetSpec]) -> list[dg.AssetSpec]:
    """The log tables, the outbound ones fed by every destination's calls (not the single
    destination's, which these settings do not have)."""
    calls = [spec.key for spec in destination_specs(settings)]
    return [
        spec.replace_attributes(deps=calls)
        if spec.key.to_user_string() in ("outbound_log", "outbound_messages")
        else spec
        for spec in tables
    ]


def _selected(keys: set[dg.AssetKey], settings: Settings) -> tuple[str, Stream] | str:
    """The one destination and stream a run sends, or why the selection is not one."""
    found = [
        (d.name, s)
        for d in settings.outbound.destinations
        for s in Stream
        if asset_key(d.name, s) in keys
    ]
    if len(found) == 1:
        return found[0]
    return (
        "select exactly one destination's calls (e.g. segment_track_calls_eu): a run sends one "
        "stream to one destination"
    )


def build_destinations_asset(settings: Settings) -> dg.AssetsDefinition:
    """The multi-asset that sends one stream to one destination per run."""
    resources = {resource_key(d.name) for d in settings.outbound.destinations}

    @dg.multi_asset(
        name=OP_NAME,
        specs=destination_specs(settings),
        can_subset=True,
        partitions_def=shard_partitions(settings.outbound.shards),
        required_resource_keys={"settings", *resources},
        description="Send pending loyalty rows of one stream to one Segment destination.",
    )
    def sync_outbound_destination(
        context: dg.AssetExecutionContext, config: OutboundConfig
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
        if config.dry_run:
            yield _dry_run(context)
            return
        yield from with_sync_runs_written(context.run_id, _sync(context, config))

    return sync_outbound_destination


def _dry_run(context: dg.AssetExecutionContext) -> dg.AssetObservation:
    """What the run would send to its destination, logged and observed on that destination's
    asset; nothing sent, no progress moved."""
    loaded = context.resources.settings.load()
    chosen = _selected(set(context.selected_asset_keys), loaded)
    if isinstance(chosen, str):
        fail_run(context.op_execution_context, chosen, "configuration")
    name, stream = chosen
    plan = outbound_dry_run(loaded, [stream], name)
    return plan_observation(context, plan, asset_key(name, stream))


def _sync(
    context: dg.AssetExecutionContext, config: OutboundConfig
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    settings: SettingsResource = context.resources.settings
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    op_context = context.op_execution_context
    chosen = _selected(set(context.selected_asset_keys), loaded)
    name = chosen[0] if isinstance(chosen, tuple) else None
    segment: SegmentResource | None = (
        getattr(context.resources, resource_key(name)) if name else None
    )
    secrets = [segment.write_key] if segment else []
    with op_run_record(op_context, logs, [*secrets, *loaded.secrets()], settings=loaded) as (
        record,
        redactor,
    ):
        if isinstance(chosen, str):
            record.error = chosen
            fail_run(op_context, chosen, "configuration")
        name, stream = chosen
        one = loaded.for_destination(name)
        shard = run_shard(context, loaded.outbound.shards)
        off = allow_list_off(one, stream) or (shard if isinstance(shard, str) else None)
        if off:
            record.error = off
            fail_run(op_context, off, "configuration")
        sync = segment.outbound_sync(one, logs, shard)
        result, stopped = send_as_configured(op_context, sync, stream, config, one)
        count_outbound(record, result)
        tag_counts(op_context, record)
        report = run_report([result], loaded.logs.dir, context.run_id, record.started_at)
        stats = outbound_run_metadata(loaded.logs.dir, record, result)
        metadata = (
            result_metadata(result)
            | {"destination": dg.MetadataValue.text(name)}
            | stats
            | report_metadata(report)
            | stopped
        )
        yield delivery(asset_key(name, stream), result.counts.sent, metadata, context)
        yield dg.AssetObservation(asset_key="outbound_log", metadata=stats)
        yield written("outbound_messages", context.run_id)
        if report.failed:
            record.error = redactor.text(report.description)
            fail_run(op_context, record.error, report.kind, metadata)


def build_destinations_job(settings: Settings, executor: dg.ExecutorDefinition | None = None):
    """The job of every destination's assets (a run selects one); its step runs in the run
    worker unless `executor` (Celery) says otherwise, as the outbound job's does."""
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.keys(*(spec.key for spec in destination_specs(settings))),
        partitions_def=shard_partitions(settings.outbound.shards),
        description="Outbound sync to several Segment destinations: one stream to one "
        "destination per run, customers routed by outbound.route_by.",
        tags={"dagster/max_retries": 3, "dagster/retry_strategy": "FROM_FAILURE"},
        executor_def=executor or dg.in_process_executor,
    )


def destination_resources(settings: Settings) -> dict[str, SegmentResource]:
    """One Segment resource per destination, its write key read by EnvVar."""
    return {
        resource_key(d.name): SegmentResource(write_key=dg.EnvVar(d.write_key_env))
        for d in settings.outbound.destinations
    }


def build_destination_sensors(settings: Settings, job) -> list[dg.SensorDefinition]:
    """A sensor per destination and stream, with the single destination's rules (a run per
    shard for new rows, a follow run's successor, a retry of what a failed run left)."""
    return [
        sensor
        for d in settings.outbound.destinations
        for sensor in build_outbound_sensors(job, destination_target(settings, d.name))
    ]


def destination_target(settings: Settings, destination: str) -> SensorTarget:
    """What one destination's sensors request: runs of this job selecting its assets."""
    assets = {stream: asset_key(destination, stream) for stream in Stream}
    return SensorTarget(JOB_NAME, OP_NAME, assets, destination)
