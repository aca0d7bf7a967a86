"""Changing `outbound.shards` on a running deployment: safe when every shard is at the same row.

A shard's watermark says which of *its* customers' rows are handled. When all old shards stand
at the same row id W, every row up to W is handled whatever the sharding, so the new shards
start at W. When they differ, the rows between the lowest and the highest are handled for some
customers only, and no new split of customers can say which: the change is refused, naming the
command that brings every shard to one row first.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.state import OutboundState, StreamBusy, sharding

# Long enough for another run's change to finish; a sender holds its lock for its whole run.
CHANGE_WAIT_S = 10.0


class ShardingChanged(RuntimeError):
    """`outbound.shards` changed while the old shards stand at different rows: nothing sent."""


def recorded_shards(state: OutboundState, stream: Stream) -> int:
    """The shard count the stream's progress is kept under (1 before any was recorded)."""
    query = sa.select(sharding.c.shards).where(*_this(state, stream))
    with state.engine.connect() as conn:
        return conn.execute(query).scalar() or 1


def ensure_shard_count(state: OutboundState, stream: Stream, wait_s: float = CHANGE_WAIT_S) -> None:
    """Move the stream's progress to `state.shard.count` shards, or raise ShardingChanged."""
    wanted = state.shard.count
    old = recorded_shards(state, stream)
    if old == wanted:
        return
    try:
        with state.for_shard(Shard(old, None)).lock(stream, wait_s=wait_s):
            old = recorded_shards(state, stream)  # another run may have changed it meanwhile
            if old != wanted:
                _move(state, stream, old, wanted)
    except StreamBusy:
        raise ShardingChanged(
            f"outbound.shards is {wanted}, but a run with the old {old} shard(s) is still "
            f"sending the {stream.value} stream: nothing was sent. Let it finish (or stop it), "
            "then run again"
        ) from None


def _move(state: OutboundState, stream: Stream, old: int, wanted: int) -> None:
    marks = {s.index: state.for_shard(s).watermark(stream) for s in Shard(old, None).members()}
    low, high = min(marks.values()), max(marks.values())
    if low != high:
        raise ShardingChanged(
            f"outbound.shards changed from {old} to {wanted}, but the {stream.value} stream's "
            f"{old} shards stand at different rows (ids {low} to {high}), so no new split can "
            f"tell which rows in between were sent: nothing was sent. Set outbound.shards back "
            f"to {old}, run `segment-sync run outbound --stream {stream.value} --upto {high}` "
            f"(it brings every shard to row {high}; no new row must be past it first), then "
            f"change outbound.shards again"
        )
    for new in Shard(wanted, None).members():
        if low:
            state.for_shard(new).advance(stream, low, "resharding")
    now = datetime.now(UTC)
    with state.engine.begin() as conn:
        conn.execute(sharding.delete().where(*_this(state, stream)))
        conn.execute(
            sharding.insert().values(
                source=state.key.source,
                destination=state.key.destination,
                stream=stream.value,
                shards=wanted,
                updated_at=now,
            )
        )


def _this(state: OutboundState, stream: Stream) -> list[sa.ColumnElement[bool]]:
    return [
        sharding.c.source == state.key.source,
        sharding.c.destination == state.key.destination,
        sharding.c.stream == stream.value,
    ]
