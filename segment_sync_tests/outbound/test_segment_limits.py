"""Segment's published limits, measured at the stand-in from the requests of a real sync.

The numbers are Segment's, written out here (not imported from the code they guard):
"500 KB" = 500,000 bytes of JSON per /v1/batch request (the stricter reading; the stand-in takes
it too), 32 KB = 32,768 bytes per message and 2,500 messages per request. A real message is
over 200 bytes, so at the wire the byte limit binds first; segment/test_batching.py shows the
count limit with tiny messages.
"""

from __future__ import annotations

import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.outbound.replay import replay
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.syncs import outbound_sync

SEGMENT_MAX_REQUEST_BYTES = 500_000
SEGMENT_MAX_MESSAGES_PER_REQUEST = 2_500
SEGMENT_MAX_MESSAGE_BYTES = 32_768


def run_sync(path):
    return outbound_sync(path).run(Stream.EVENTS, "run-limits")


def append_purchases(path, count: int, padding: int) -> None:
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    note = "x" * padding
    store.append_events(
        [NewEvent(f"c-{i % 50}", "purchase", {"total": i, "note": note}) for i in range(count)]
    )


def batch_requests(standin) -> list[dict]:
    return [r for r in standin.requests if r["path"] == "/v1/batch"]


def test_large_messages_fill_requests_to_at_most_500000_bytes(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    append_purchases(path, 600, padding=4_000)
    assert run_sync(path).ok
    requests = batch_requests(segment_standin)
    json_sizes = [r["json_bytes"] for r in requests]
    assert max(json_sizes) <= SEGMENT_MAX_REQUEST_BYTES
    assert max(json_sizes) > SEGMENT_MAX_REQUEST_BYTES - 10_000  # batches are filled, not tiny
    assert all(r["status"] == 200 and r["dropped"] == 0 for r in requests)
    assert len(segment_standin.accepted_message_ids()) == 600


def test_a_message_over_32768_bytes_is_never_sent_and_fails_naming_the_limit(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    append_purchases(path, 1, padding=SEGMENT_MAX_MESSAGE_BYTES)  # the JSON around it tips it over
    append_purchases(path, 1, padding=SEGMENT_MAX_MESSAGE_BYTES - 1_000)  # fits
    result = run_sync(path)
    assert (result.counts.sent, result.counts.failed) == (1, 1)
    assert len(segment_standin.accepted_message_ids()) == 1
    assert all(
        r["json_bytes"] <= SEGMENT_MAX_REQUEST_BYTES for r in batch_requests(segment_standin)
    )
    errors = connect(load_settings(path).logs.dir).execute(
        "SELECT error FROM outbound_messages WHERE outcome = 'failed'"
    )
    (error,) = errors.fetchone()
    assert "32768" in error


# Enough rows for several requests each time: many small messages (each request then fills to
# within a few hundred bytes of the limit), or large ones of any size up to and past the
# 32,768-byte message limit (those fail alone, unsent). Sizes come from a seeded RNG: hypothesis
# drawing thousands of sizes itself would be slow.
shapes = st.one_of(
    st.tuples(st.integers(1_900, 3_000), st.integers(0, 60)),
    st.tuples(st.integers(40, 150), st.integers(9_000, 33_000)),
)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, seed=st.integers(0, 2**32))
def test_every_request_the_standin_receives_is_at_most_500000_bytes_and_2500_messages(
    write_settings, segment_standin, shape, seed
):
    count, biggest = shape
    rng = random.Random(seed)
    paddings = [rng.randint(0, biggest) for _ in range(count)]
    # One store for every example; each example's rows are above the last one's watermark.
    path = write_settings(outbound={"base_url": segment_standin.url})
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events(
        [NewEvent(f"c-{i % 7}", "purchase", {"note": "x" * n}) for i, n in enumerate(paddings)]
    )
    segment_standin.reset()
    counts = run_sync(path).counts
    requests = batch_requests(segment_standin)
    assert all(r["status"] == 200 for r in requests)  # a body over the limit would get 400
    assert all(r["json_bytes"] <= SEGMENT_MAX_REQUEST_BYTES for r in requests)
    assert all(r["messages"] <= SEGMENT_MAX_MESSAGES_PER_REQUEST for r in requests)
    assert counts.sent + counts.failed == count
    assert len(segment_standin.accepted_message_ids()) == counts.sent


def test_a_message_that_grows_past_32768_bytes_when_re_serialised_is_refused_by_run_and_replay(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    append_purchases(path, 10, padding=10)
    # 30,000 bytes as stored; Segment reads each 1e5 as 100000.0: about 67,500 bytes.
    grown = insert_raw(
        store, loyalty_events, action="purchase", data='{"n":[' + "1e5," * 7_499 + "1e5]}"
    )
    append_purchases(path, 10, padding=10)
    sync = outbound_sync(path)
    try:
        counts = sync.run(Stream.EVENTS, "run-limits").counts
    except OutboundFailed as failed:
        counts = failed.result.counts
    assert (counts.sent, counts.failed) == (20, 1)
    assert len(segment_standin.accepted_message_ids()) == 20
    for message in segment_standin.messages:
        assert len(orjson.dumps(message)) <= SEGMENT_MAX_MESSAGE_BYTES
    assert all(r["status"] == 200 for r in batch_requests(segment_standin))

    replay(sync, sync.settings.logs.dir, [Stream.EVENTS], "run-replay")
    with connect(sync.settings.logs.dir) as con:
        reasons = con.execute(
            "SELECT run_id, error FROM outbound_messages WHERE source_id = ? ORDER BY run_id",
            [grown],
        ).fetchall()
    assert [run_id for run_id, _ in reasons] == ["run-limits", "run-replay"]
    (run_reason, replay_reason) = (reason for _, reason in reasons)
    assert run_reason == replay_reason
    assert run_reason.startswith(f"loyalty_events id {grown}: message is 30")
    assert "once Segment re-serialises its numbers" in run_reason and "32768-byte" in run_reason
