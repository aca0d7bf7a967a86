"""Outbound sensors: one per stream (and destination), starting a run per shard for rows newer
than its cursor, the successor of a follow run, or a retry of what a failed run left.

The single destination's sensors and each of several destinations' sensors keep the same rules;
a `SensorTarget` says whose job, op, assets and progress they look at.

No `from __future__ import annotations` here: Dagster inspects the sensor signatures.
"""

import time
from typing import TYPE_CHECKING

import dagster as dg

from segment_sync import factory
from segment_sync.defs.outbound import outbound_sync_job
from segment_sync.defs.outbound_handover import (
    HANDOVER_LEAD_S,
    SENSOR_INTERVAL_S,
    _while_active,
    successor_due,
)
from segment_sync.defs.outbound_sensor_target import (
    SINGLE,
    SensorTarget,
    _active_runs,
    _run_request,
    _runs_of,
    _watermark,
)
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.tags import FAILURE_KIND_TAG
from segment_sync.directions import stream_off
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.settings import Settings

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

__all__ = [  # imported from here by destinations.py, definitions.py and the tests
    "HANDOVER_LEAD_S",
    "SENSOR_INTERVAL_S",
    "SensorTarget",
    "build_outbound_sensors",
    "outbound_sensors",
    "stream_sensor",
    "successor_due",
]


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
