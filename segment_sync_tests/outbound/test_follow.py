"""A follow run keeps sending rows as they commit, under the same lock and guarantees."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.state import StreamBusy
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.syncs import outbound_sync

PATIENCE_S = 60  # generous: a busy machine is slow, never wrong


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


@pytest.fixture
def following(write_settings, segment_standin):
    """A follow run (10 minutes, stopped by the test) over a store with one event, in a thread."""
    path = write_settings(
        outbound={"base_url": segment_standin.url, "follow_s": 600, "poll_interval_ms": 50}
    )
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent("c-0", "point_add", {"points": 0})])
    sync = outbound_sync(settings)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = sync.run(Stream.EVENTS, "run-follow", follow_s=600)
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    eventually(lambda: len(segment_standin.messages) == 1, "the first event was sent")
    yield sync, store, outcome, settings
    sync.stop_following.set()
    thread.join(PATIENCE_S)
    assert not thread.is_alive()


def finish(sync, outcome: dict):
    sync.stop_following.set()
    eventually(lambda: outcome, "the follow run ended")
    assert "error" not in outcome, outcome.get("error")
    return outcome["result"]


def test_rows_committed_while_the_run_follows_are_sent_by_it(following, segment_standin):
    sync, store, outcome, _ = following
    ids = []
    for i in range(1, 4):
        ids += store.append_events([NewEvent(f"c-{i}", "point_add", {"points": i})])
        eventually(lambda n=i + 1: len(segment_standin.messages) == n, f"event {i} was sent")
        assert not outcome, "the run ended before the stream went quiet"
    result = finish(sync, outcome)
    assert [m["userId"] for m in segment_standin.messages] == ["c-0", "c-1", "c-2", "c-3"]
    assert result.counts.sent == 4 and result.watermark_after == ids[-1]
    assert result.passes == 4  # the first pass, then one per commit
    assert sync.state.watermark(Stream.EVENTS) == ids[-1]


def test_a_follow_run_logs_each_micro_batch_before_it_moves_on(following, segment_standin):
    sync, store, outcome, settings = following
    [late] = store.append_events([NewEvent("c-late", "purchase", {"total": 9})])
    eventually(lambda: sync.state.watermark(Stream.EVENTS) == late, "progress reached the late row")
    with connect(settings.logs.dir) as con:
        rows = con.execute(
            "SELECT source_id, outcome FROM outbound_messages WHERE run_id = 'run-follow'"
        ).fetchall()
    assert (late, "delivered") in rows  # logged while the run still follows
    assert not outcome
    finish(sync, outcome)


def test_a_follow_run_holds_the_stream_so_no_second_run_sends_it(following):
    sync, _, outcome, settings = following
    other = outbound_sync(settings)
    with (
        pytest.raises(StreamBusy, match="being sent by another run"),
        other.state.lock(Stream.EVENTS, wait_s=0),  # asks once, does not wait
    ):
        pass
    assert not outcome, "a run that did not wait made the follow run let go"
    finish(sync, outcome)


def test_a_follow_run_hands_the_stream_to_a_run_that_waits_for_it(following):
    sync, store, outcome, settings = following
    other = outbound_sync(settings)
    with other.state.lock(Stream.EVENTS, wait_s=PATIENCE_S):  # e.g. the hourly reconciliation
        eventually(lambda: outcome, "the follow run ended once it let go of the stream")
        assert "error" not in outcome and outcome["result"].counts.sent == 1
        [late] = store.append_events([NewEvent("c-late", "purchase", {"total": 3})])
        assert sync.state.watermark(Stream.EVENTS) < late  # nobody sends while the waiter holds it


def test_a_follow_run_reports_the_latency_from_event_time_to_segment(following):
    sync, _, outcome, _ = following
    result = finish(sync, outcome)
    p95 = result.latency_s(0.95)
    assert p95 is not None and 0 <= p95 < PATIENCE_S
