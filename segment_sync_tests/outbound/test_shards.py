"""Customer shards: a stable split of a stream by customer ID, one sender per shard."""

from __future__ import annotations

import binascii

import pyarrow as pa
import pytest

from segment_sync.loyalty.records import Stream
from segment_sync.outbound.shards import (
    Shard,
    partition_keys,
    shard_from_partition,
    shard_of,
    shard_rows,
)

CUSTOMERS = [f"c-{i}" for i in range(500)] + ["ü-ümlaut", "客户-7"]


def test_a_customer_shard_is_crc32_of_its_utf8_id_so_every_process_agrees():
    for customer in CUSTOMERS:
        assert shard_of(customer, 4) == binascii.crc32(customer.encode("utf-8")) % 4


def test_the_shards_split_the_customers_disjointly_and_completely():
    chunk = pa.table({"id": list(range(len(CUSTOMERS))), "customer_id": CUSTOMERS})
    parts = [shard_rows(chunk, s)["id"].to_pylist() for s in Shard(4, None).members()]
    assert sorted(i for p in parts for i in p) == list(range(len(CUSTOMERS)))
    assert all(len(p) > len(CUSTOMERS) // 8 for p in parts)  # no shard is starved


def test_one_shard_keeps_the_unsharded_progress_key_so_existing_deployments_continue():
    assert Shard().stream_key(Stream.EVENTS) == "events"
    assert Shard(4, 2).stream_key(Stream.PROFILES) == "profiles/shard-2-of-4"


def test_partition_keys_name_each_shard_and_map_back():
    assert partition_keys(3) == ["shard-0", "shard-1", "shard-2"]
    assert shard_from_partition("shard-2", 3) == Shard(3, 2)


def test_a_partition_outside_the_configured_shards_is_refused_naming_the_range():
    with pytest.raises(ValueError, match=r"outbound.shards = 2 \(shard-0..shard-1\)"):
        shard_from_partition("shard-3", 2)
