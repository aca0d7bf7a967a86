"""Outbound sensors: one per stream (and destination), starting a run per shard for rows newer
than its cursor, the successor of a follow run, or a retry of what a failed run left.

The single destination's sensors and each of several destinations' sensors keep the same rules;
a `SensorTarget` says whose job, op, assets and progress they look at.

No `from __future__ import annotations` here: Dagster inspects the sensor signatures.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import STREAM_ASSETS
from segment_sync.defs.outbound import OutboundConfig, outbound_sync_job
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.tags import FAILURE_KIND_TAG, NEWEST_TAG, STREAM_TAG, TRIGGER_TAG
from segment_sync.directions import stream_off
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.settings import Settings

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

SENSOR_INTERVAL_S = 15
# A follow run's successor is requested this long before the window ends: a tick and a launch.
HANDOVER_LEAD_S = 2 * SENSOR_INTERVAL_S + 15


DESTINATION_TAG = "segment_sync/destination"


@dataclass(frozen=True)
class SensorTarget:
    """Whose runs a sensor requests: the job, its op, the asset of each stream, and the
    destination (None: the single destination of settings without `outbound.destinations`)."""

    job_name: str
    op_name: str
    assets: Mapping[Stream, dg.AssetKey]
    destination: str | None = None

    def prefix(self, stream: Stream) -> str:
        """`events`, or `events@eu` for one of several destinations."""
        return stream.value if self.destination is None else f"{stream.value}@{self.destination}"

    def lane(self, stream: Stream, shard: Shard) -> str:
        """The stream tag of a shard's runs: dagster.yaml limits concurrent runs per value."""
        prefix = self.prefix(stream)
        return prefix if shard.whole else f"{prefix}/{shard.partition_key}"

    def sensor_name(self, stream: Stream) -> str:
        where = "" if self.destination is None else f"{self.destination}_"
        return f"outbound_{where}{stream.value}_sensor"

    def settings(self, loaded: Settings) -> Settings:
        """The settings as this target's destination sees them."""
        return loaded.for_destination(self.destination)


SINGLE = SensorTarget(
    outbound_sync_job.name,
    "sync_outbound_stream",
    {stream: spec.key for stream, spec in STREAM_ASSETS.items()},
)


def _run_request(
    target: SensorTarget,
    stream: Stream,
    shard: Shard,
    upto: int | None,
    reason: str,
    newest: int,
) -> dg.RunRequest:
    """A follow run of the stream (shard); `newest`: the store's newest id now, so its
    successor is requested only if rows arrive after it. `reason` ends the run key."""
    config = OutboundConfig(stream=stream, upto=upto, follow=True)
    run_key = f"{target.prefix(stream)}-{reason}"
    tags = {
        TRIGGER_TAG: "sensor",
        STREAM_TAG: target.lane(stream, shard),
        NEWEST_TAG: str(newest),
    }
    if target.destination is not None:
        tags[DESTINATION_TAG] = target.destination
    return dg.RunRequest(
        run_key=run_key if shard.whole else f"{run_key}-{shard.partition_key}",
        run_config=dg.RunConfig(ops={target.op_name: config}),
        asset_selection=[target.assets[stream]],
        partition_key=None if shard.whole else shard.partition_key,
        tags=tags,
    )


def _runs_of(target: SensorTarget, stream: Stream, shard: Shard, **filters) -> dg.RunsFilter:
    """Outbound runs of this stream (and shard, when sharded) to the target."""
    tags = {STREAM_TAG: target.lane(stream, shard)}
    return dg.RunsFilter(job_name=target.job_name, tags=tags, **filters)


_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _active_runs(
    context: dg.SensorEvaluationContext, target: SensorTarget, stream: Stream, shard: Shard
) -> list[dg.RunRecord]:
    """Queued or running outbound runs of this stream (shard), newest first."""
    filters = _runs_of(target, stream, shard, statuses=_ACTIVE)
    return list(context.instance.get_run_records(filters=filters, limit=2))


def _while_active(
    target: SensorTarget,
    stream: Stream,
    shard: Shard,
    active: list[dg.RunRecord],
    loaded: Settings,
    newest: int,
) -> dg.RunRequest | dg.SkipReason:
    """A run is sending: wait, or start its successor early so the hand-over costs no launch.

    The successor starts up to HANDOVER_LEAD_S before the sender's follow window ends and waits
    on the stream's lock, which the sender holds until its last pass is logged. Only while
    there is work: rows arrived since the sender was requested, or rows are pending. An idle
    stream's chain ends with its sender; the next row starts a run at the next tick.
    """
    follow_s = loaded.outbound.follow_s
    sender = active[-1]
    run_id = sender.dagster_run.run_id
    if len(active) > 1:
        return dg.SkipReason(
            f"run {run_id} is sending new {stream.value} as they commit; run "
            f"{active[0].dagster_run.run_id} takes over when it ends"
        )
    if successor_due(sender.start_time, follow_s, time.time()):
        if not _work_after(sender, target, loaded, stream, shard, newest):
            return dg.SkipReason(
                f"run {run_id} is following {stream.value}, and no row arrived since it was "
                f"requested (newest id {newest}), none pending: no successor; it ends with its "
                "window, and the next row starts a run"
            )
        return _run_request(target, stream, shard, None, f"after-{run_id}", newest)
    return dg.SkipReason(
        f"run {run_id} ({sender.dagster_run.status.value.lower()}) is sending new "
        f"{stream.value} as they commit; its successor starts about "
        f"{handover_lead_s(follow_s):.0f}s before its follow window ends"
    )


def _work_after(
    sender: dg.RunRecord,
    target: SensorTarget,
    loaded: Settings,
    stream: Stream,
    shard: Shard,
    newest: int,
) -> bool:
    """Rows arrived since `sender` was requested (its NEWEST_TAG), or rows are pending."""
    requested_at = sender.dagster_run.tags.get(NEWEST_TAG)
    if requested_at is not None and newest > int(requested_at):
        return True
    return _watermark(target, loaded, stream, shard) < newest


def handover_lead_s(follow_s: float) -> float:
    """How early a follow run's successor is requested: a tick and a launch, at most half."""
    return min(HANDOVER_LEAD_S, follow_s / 2)


def successor_due(started: float | None, follow_s: float, now: float) -> bool:
    """Is it time to start the successor of a follow run that started at `started`?"""
    if follow_s <= 0 or started is None:
        return False
    return now >= started + follow_s - handover_lead_s(follow_s)


def _watermark(target: SensorTarget, loaded: Settings, stream: Stream, shard: Shard) -> int:
    """The target's progress on the stream (shard)."""
    one = target.settings(loaded)
    state = factory.outbound_state(one, one.write_key(), shard=shard)
    try:
        return state.watermark(stream)
    finally:
        state.close()


def _retry_request(
    context: dg.SensorEvaluationContext,
    target: SensorTarget,
    stream: Stream,
    shard: Shard,
    loaded: Settings,
    newest: int,
) -> dg.RunRequest | dg.SkipReason:
    """Nothing new: start one more run for rows a failed run (and its retries) left pending."""
    outbound = loaded.outbound
    watermark = _watermark(target, loaded, stream, shard)
    if watermark >= newest:
        return dg.SkipReason(f"no {stream.value} newer than id {newest}; all handled up to it")
    records = context.instance.get_run_records(filters=_runs_of(target, stream, shard), limit=1)
    last = records[0] if records else None
    if last is None:
        return dg.SkipReason(f"{newest - watermark} {stream.value} row(s) pending; a run has them")
    if last.dagster_run.status != dg.DagsterRunStatus.FAILURE:  # e.g. stopped before it sent
        last_id = last.dagster_run.run_id
        return _run_request(target, stream, shard, newest, f"pending-after-{last_id}", newest)
    kind = last.dagster_run.tags.get(FAILURE_KIND_TAG)
    if kind in ("permanent", "configuration"):
        return dg.SkipReason(
            f"{newest - watermark} {stream.value} row(s) pending after failed run "
            f"{last.dagster_run.run_id}, which a retry cannot heal ({kind}); fix what its "
            f"error names, then launch {target.job_name} (or `segment-sync run outbound`); "
            "a new row also starts a run"
        )
    waited = time.time() - (last.end_time or 0)
    if waited < outbound.retry_failed_after_s:
        return dg.SkipReason(
            f"{newest - watermark} {stream.value} row(s) pending after failed run "
            f"{last.dagster_run.run_id}; retrying in {outbound.retry_failed_after_s - waited:.0f}s"
        )
    return _run_request(
        target, stream, shard, newest, f"retry-after-{last.dagster_run.run_id}", newest
    )


def _shard_request(
    context: dg.SensorEvaluationContext,
    target: SensorTarget,
    stream: Stream,
    shard: Shard,
    loaded: Settings,
    newest: int,
    cursor: int,
) -> tuple[dg.RunRequest | dg.SkipReason, bool]:
    """What one shard needs now, and whether a run of it is still sending."""
    active = _active_runs(context, target, stream, shard)
    if active:  # it sends these rows (or its successor will); the cursor waits for it
        return _while_active(target, stream, shard, active, loaded, newest), True
    if newest > cursor:
        if _watermark(target, loaded, stream, shard) >= newest:
            return dg.SkipReason(f"{stream.value} up to id {newest} already sent"), False
        return _run_request(target, stream, shard, newest, f"upto-{newest}", newest), False
    return _retry_request(context, target, stream, shard, loaded, newest), False


def stream_sensor(
    stream: Stream, job: "UnresolvedAssetJobDefinition", target: SensorTarget = SINGLE
) -> dg.SensorDefinition:
    """An outbound run (per shard) for rows newer than the cursor, or again for rows a failed
    run left."""
    where = "" if target.destination is None else f" to destination {target.destination}"

    @dg.sensor(
        name=target.sensor_name(stream),
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New loyalty {stream.value} -> an outbound run{where} for them (cursor: "
        "last row id requested).",
    )
    def _sensor(context: dg.SensorEvaluationContext, settings: SettingsResource):
        loaded = target.settings(settings.load())
        off = stream_off(loaded, stream, target.destination)
        if off:  # no run, and the cursor stays: rows are not passed while the stream is off
            return dg.SkipReason(off)
        store = factory.loyalty_store(loaded)
        cursor = int(context.cursor or 0)
        try:
            newest = store.max_id(stream, floor=cursor)  # never past an id that may still commit
        finally:
            store.close()
        shards = factory.all_shards(loaded).members()
        asks = [_shard_request(context, target, stream, s, loaded, newest, cursor) for s in shards]
        if newest > cursor and not any(sending for _, sending in asks):
            context.update_cursor(str(newest))  # a run key per shard keeps requests unique
        if len(shards) == 1:
            return asks[0][0]
        requests = [a for a, _ in asks if isinstance(a, dg.RunRequest)]
        if requests:
            return requests
        reasons = [a.skip_message for a, _ in asks]
        return dg.SkipReason(
            "; ".join(f"{s.partition_key}: {r}" for s, r in zip(shards, reasons, strict=True))
        )

    return _sensor


def build_outbound_sensors(
    job: "UnresolvedAssetJobDefinition", target: SensorTarget = SINGLE
) -> list[dg.SensorDefinition]:
    """A sensor per stream for the target's runs."""
    return [stream_sensor(Stream.EVENTS, job, target), stream_sensor(Stream.PROFILES, job, target)]


outbound_sensors = build_outbound_sensors(outbound_sync_job)
