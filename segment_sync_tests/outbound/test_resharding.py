"""Changing outbound.shards: carried over when every shard stands at one row, else refused."""

from __future__ import annotations

import threading

import pytest

from segment_sync.loyalty.records import Stream
from segment_sync.outbound.resharding import ShardingChanged, ensure_shard_count, recorded_shards
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.state import OutboundState, ProgressKey

KEY = ProgressKey("sqlite:loyalty.db", "http://segment key:abc")


@pytest.fixture
def state_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


def state(url: str, shard: Shard) -> OutboundState:
    return OutboundState(url, KEY, shard)


def test_an_unsharded_stream_moves_to_four_shards_at_its_watermark(state_url):
    state(state_url, Shard()).advance(Stream.EVENTS, 120, "run-1")
    four = state(state_url, Shard(4, 1))
    ensure_shard_count(four, Stream.EVENTS)
    assert recorded_shards(four, Stream.EVENTS) == 4
    marks = [four.for_shard(s).watermark(Stream.EVENTS) for s in Shard(4, None).members()]
    assert marks == [120, 120, 120, 120]
    assert recorded_shards(four, Stream.PROFILES) == 1  # each stream on its own


def test_shards_at_different_rows_refuse_a_new_count_and_name_the_catch_up_command(state_url):
    four = state(state_url, Shard(4, 0))
    ensure_shard_count(four, Stream.EVENTS)
    four.advance(Stream.EVENTS, 300, "run-1")
    four.for_shard(Shard(4, 3)).advance(Stream.EVENTS, 480, "run-2")
    two = state(state_url, Shard(2, 0))
    with pytest.raises(ShardingChanged) as refused:
        ensure_shard_count(two, Stream.EVENTS)
    text = str(refused.value)
    assert "from 4 to 2" in text and "ids 0 to 480" in text
    assert "run outbound --stream events --upto 480" in text
    assert recorded_shards(two, Stream.EVENTS) == 4
    assert two.watermark(Stream.EVENTS) == 0  # the new shards did not start anywhere


def test_a_change_waits_for_no_run_of_the_old_shards_and_refuses_while_one_sends(state_url):
    old = state(state_url, Shard())
    holding, release = threading.Event(), threading.Event()

    def sender() -> None:
        with old.lock(Stream.EVENTS):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        assert holding.wait(30)
        with pytest.raises(ShardingChanged, match="still sending the events stream"):
            ensure_shard_count(state(state_url, Shard(2, 0)), Stream.EVENTS, wait_s=0.3)
    finally:
        release.set()
        thread.join()


def test_the_unchanged_count_touches_nothing(state_url):
    one = state(state_url, Shard())
    one.advance(Stream.EVENTS, 7, "run-1")
    ensure_shard_count(one, Stream.EVENTS)
    assert one.watermark(Stream.EVENTS) == 7


def test_every_shard_at_once_reports_the_lowest_watermark_and_cannot_advance(state_url):
    four = state(state_url, Shard(4, 0))
    for s, mark in zip(Shard(4, None).members(), [50, 20, 90, 70], strict=True):
        four.for_shard(s).advance(Stream.EVENTS, mark, "run")
    everyone = state(state_url, Shard(4, None))
    assert everyone.watermark(Stream.EVENTS) == 20
    with pytest.raises(ValueError, match="per shard"):
        everyone.advance(Stream.EVENTS, 100, "run")
