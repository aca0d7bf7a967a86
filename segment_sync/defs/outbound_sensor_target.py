"""Whose runs an outbound sensor requests (`SensorTarget`), and the requests, run lookups and
progress reads it makes for that target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import STREAM_ASSETS
from segment_sync.defs.outbound import OutboundConfig, outbound_sync_job
from segment_sync.defs.tags import NEWEST_TAG, STREAM_TAG, TRIGGER_TAG
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.settings import Settings

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


def _watermark(target: SensorTarget, loaded: Settings, stream: Stream, shard: Shard) -> int:
    """The target's progress on the stream (shard)."""
    one = target.settings(loaded)
    state = factory.outbound_state(one, one.write_key(), shard=shard)
    try:
        return state.watermark(stream)
    finally:
        state.close()
