"""outbound.shards: shards sent in parallel deliver every row once, each customer in order."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from segment_sync import factory
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.outbound.results import OutboundFailed, OutboundResult
from segment_sync.outbound.shards import Shard, shard_of
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.test_bad_rows import insert_raw


def sharded(write_settings, segment_standin, shards: int = 4, **outbound):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "shards": shards, "chunk_size": 300, **outbound}
    )
    return load_settings(path)


def run_shard(settings, index: int | None) -> OutboundResult:
    shard = Shard(settings.outbound.shards, index)
    sync = factory.outbound_sync(
        settings, WRITE_KEY, LogWriter(settings.logs.dir), shard=shard, backoff_base_s=0.01
    )
    try:
        return sync.run(Stream.EVENTS, f"run-shard-{index}")
    finally:
        sync.state.close()


def append(settings, n: int, customers: int = 97) -> list[int]:
    events = [NewEvent(f"c-{i % customers}", "point_add", {"n": i}) for i in range(n)]
    return LoyaltyStore(settings.loyalty_store.url).append_events(events)


def row_id(message: dict) -> int:
    return int(message["messageId"].split("-")[2])


def test_four_shards_sent_at_once_deliver_every_row_exactly_once_in_customer_order(
    write_settings, segment_standin
):
    settings = sharded(write_settings, segment_standin)
    ids = append(settings, 2_000)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: run_shard(settings, i), range(4)))
    sent = [row_id(m) for m in segment_standin.messages]
    assert sorted(sent) == ids  # every row once: no duplicate, none lost
    assert segment_standin.stats()["duplicate_message_ids"] == 0
    per_customer = defaultdict(list)
    for m in segment_standin.messages:
        per_customer[m["userId"]].append(row_id(m))
    assert all(rows == sorted(rows) for rows in per_customer.values())
    assert {r.watermark_after for r in results} == {ids[-1]}
    assert all(r.counts.sent > 300 for r in results)  # each shard sent its own share


def test_a_shard_sends_only_its_own_customers(write_settings, segment_standin):
    settings = sharded(write_settings, segment_standin)
    append(settings, 400)
    result = run_shard(settings, 2)
    users = {m["userId"] for m in segment_standin.messages}
    assert users and {shard_of(u, 4) for u in users} == {2}
    assert result.counts.sent == len(segment_standin.messages)


def test_a_shard_carries_on_from_its_own_watermark_after_new_rows(write_settings, segment_standin):
    settings = sharded(write_settings, segment_standin, shards=2)
    first = append(settings, 300)
    run_shard(settings, 0)
    second = append(settings, 300)
    run_shard(settings, 0)
    run_shard(settings, 1)
    sent = [row_id(m) for m in segment_standin.messages]
    assert sorted(sent) == first + second


def test_a_bad_row_fails_in_its_customers_shard_and_the_other_shards_advance(
    write_settings, segment_standin
):
    settings = sharded(write_settings, segment_standin, shards=2)
    good = append(settings, 200)
    store = LoyaltyStore(settings.loyalty_store.url)
    bad = insert_raw(store, loyalty_events, action="point_add", data="{not json")
    results = {}
    for index in (0, 1):
        try:
            results[index] = run_shard(settings, index)
        except OutboundFailed as failed:
            results[index] = failed.result
    home = shard_of("c-bad", 2)
    assert results[home].counts.failed == 1 and results[1 - home].counts.failed == 0
    assert sorted(row_id(m) for m in segment_standin.messages) == good
    assert {r.watermark_after for r in results.values()} == {bad}
