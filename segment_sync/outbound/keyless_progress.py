"""Progress read without the write key, for a dry run (it sends nothing, so it needs no key).

Progress is keyed by the write key's fingerprint. Without the key, every progress kept for this
store and endpoint is a candidate: one is the destination's own; none means nothing was sent
from this store to this endpoint yet; several (write keys changed, or several Segment sources)
count from the lowest, the most any of them would send.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from segment_sync.db import Url
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.state import OutboundState, ProgressKey, progress


@dataclass
class LowestProgress:
    """The watermarks of several progress keys, read as the lowest (0 with none)."""

    states: list[OutboundState]

    def watermark(self, stream: Stream) -> int:
        return min((s.watermark(stream) for s in self.states), default=0)

    def close(self) -> None:
        for state in self.states:
            state.close()


def progress_without_key(
    state_url: Url, store_url: Url, endpoint: Url, shard: Shard
) -> LowestProgress:
    """Every progress kept for this store and endpoint, whatever write key it was sent with."""
    probe = OutboundState(state_url, ProgressKey.of(store_url, endpoint, ""), shard)
    prefix = probe.key.destination.rsplit(" key:", 1)[0] + " key:"
    query = (
        sa.select(progress.c.destination)
        .where(progress.c.source == probe.key.source)
        .where(progress.c.destination.startswith(prefix, autoescape=True))
        .distinct()
        .order_by(progress.c.destination)
    )
    try:
        with probe.engine.connect() as conn:
            destinations = list(conn.execute(query).scalars())
    finally:
        probe.close()
    source = probe.key.source
    return LowestProgress(
        [OutboundState(state_url, ProgressKey(source, d), shard) for d in destinations]
    )
