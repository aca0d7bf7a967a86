"""Customer shards: a stream split by a stable hash of the customer's ID (`outbound.shards`).

Every row of a customer lands in the same shard, so one sender per shard keeps each customer's
messages in order while shards are sent in parallel. CRC-32 of the UTF-8 ID is stable across
processes, machines and Python versions (`hash()` is salted per process).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa

from segment_sync.loyalty.records import Stream

PARTITION_PREFIX = "shard-"
R = TypeVar("R")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`; `index` None is every shard at once (replay, reconciliation)."""

    count: int = 1
    index: int | None = 0

    def __post_init__(self) -> None:
        if self.count < 1 or (self.index is not None and not 0 <= self.index < self.count):
            raise ValueError(f"no shard {self.index} of {self.count}")

    @property
    def whole(self) -> bool:
        """One shard holds the whole stream (today's unsharded behaviour)."""
        return self.count == 1

    def members(self) -> list[Shard]:
        """The single shards this one stands for."""
        if self.index is not None:
            return [self]
        return [Shard(self.count, i) for i in range(self.count)]

    def stream_key(self, stream: Stream) -> str:
        """The progress and lock key: the stream's own name when unsharded, as before shards."""
        if self.whole:
            return stream.value
        if self.index is None:
            raise ValueError("every shard at once has no single progress key")
        return f"{stream.value}/shard-{self.index}-of-{self.count}"

    @property
    def partition_key(self) -> str:
        return f"{PARTITION_PREFIX}{self.index}"


def shard_of(customer_id: str | None, count: int) -> int:
    """The shard of a customer's rows; rows without an ID go to shard 0."""
    if count == 1 or not customer_id:
        return 0
    return zlib.crc32(customer_id.encode()) % count


def in_shard(customer_ids: Sequence[str | None], shard: Shard) -> list[bool]:
    """Which of these customers belong to `shard`."""
    if shard.whole or shard.index is None:
        return [True] * len(customer_ids)
    count, index = shard.count, shard.index
    return [shard_of(c, count) == index for c in customer_ids]


def records_in_shard(rows: Sequence[R], shard: Shard) -> list[R]:
    """The records (or bad rows, by their customer ID if known) that belong to `shard`."""
    keep = in_shard([getattr(r, "customer_id", None) for r in rows], shard)
    return [r for r, k in zip(rows, keep, strict=True) if k]


def shard_rows(chunk: pa.Table, shard: Shard) -> pa.Table:
    """The rows of an Arrow chunk (with a `customer_id` column) that belong to `shard`."""
    if shard.whole or shard.index is None:
        return chunk
    return chunk.filter(pa.array(in_shard(chunk["customer_id"].to_pylist(), shard)))


def partition_keys(count: int) -> list[str]:
    """The Dagster partition keys of `count` shards."""
    return [f"{PARTITION_PREFIX}{i}" for i in range(count)]


def shard_from_partition(key: str, count: int) -> Shard:
    """The shard a partition key names; a key outside `count` shards is a configuration error."""
    number = key.removeprefix(PARTITION_PREFIX)
    if not key.startswith(PARTITION_PREFIX) or not number.isdigit() or int(number) >= count:
        raise ValueError(
            f"partition {key!r} is not one of outbound.shards = {count} "
            f"({PARTITION_PREFIX}0..{PARTITION_PREFIX}{count - 1}): launch one of those"
        )
    return Shard(count, int(number))
