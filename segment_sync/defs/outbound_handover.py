"""The hand-over between follow runs: while a run sends, wait, or request its successor shortly
before its follow window ends (only while there is work)."""

from __future__ import annotations

import time

import dagster as dg

from segment_sync.defs.outbound_sensor_target import SensorTarget, _run_request, _watermark
from segment_sync.defs.tags import NEWEST_TAG
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.settings import Settings

SENSOR_INTERVAL_S = 15
# A follow run's successor is requested this long before the window ends: a tick and a launch.
HANDOVER_LEAD_S = 2 * SENSOR_INTERVAL_S + 15


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
