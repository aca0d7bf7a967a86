"""A run's memory does not grow with its backlog: what a chunk leaves behind is freed."""

from __future__ import annotations

import gc

import httpx

from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.build import BuiltChunk
from segment_sync.outbound.sync import OutboundSync
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.syncs import outbound_sync


def _alive_after_each_chunk(
    write_settings, segment_standin, kind: type
) -> tuple[list[int], OutboundSync]:
    """How many objects of `kind` are alive after each of 30 chunks of 100 events; the sync."""
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    seed(LoyaltyStore(load_settings(path).loyalty_store.url), 3_000, 0, 50)
    sync = outbound_sync(path)
    held: list[int] = []
    sync.on_chunk = lambda result: held.append(sum(isinstance(o, kind) for o in gc.get_objects()))
    result = sync.run(Stream.EVENTS, "run-memory")
    assert result.counts.rows_read == 3_000 and len(held) == 30
    return held, sync


def test_finished_requests_are_freed_chunk_by_chunk_not_held_to_the_end(
    write_settings, segment_standin
):
    # httpx's response and its stream refer to each other (a cycle that only the cyclic
    # collector frees) and keep the request, gzipped body included.
    held, sync = _alive_after_each_chunk(write_settings, segment_standin, httpx.Response)
    in_flight = sync.settings.outbound.max_in_flight
    assert max(held[5:]) <= 2 * in_flight, held  # a chunk's worth at most, not one per chunk


def test_built_chunks_are_freed_once_sent_not_held_by_the_pass(write_settings, segment_standin):
    # A finished read's future holds its built chunk (every message of the chunk): the pass
    # kept every one of them listed until it ended, so RSS grew with the backlog.
    held, _ = _alive_after_each_chunk(write_settings, segment_standin, BuiltChunk)
    assert max(held) <= 3, held  # the chunk being sent and the next one read, not one per chunk
