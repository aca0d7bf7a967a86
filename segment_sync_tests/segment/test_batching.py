"""Batching respects Segment's limits and neither loses nor duplicates a message."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.segment.batching import request_bounds
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.messages import Message

# Segment's published limits, written out: the code's own constants cannot check themselves.
# "500 KB" per request, read as 500,000 bytes of uncompressed JSON, envelope included.
SEGMENT_MAX_REQUEST_BYTES = 500_000
SEGMENT_MAX_MESSAGES_PER_REQUEST = 2_500
MAX_MESSAGE_BYTES = 32_768
SENT_AT = "2026-11-28T00:00:00.000Z"


def message(i: int, size: int) -> Message:
    body = orjson.dumps({"type": "track", "messageId": f"m{i}", "pad": "x" * size})
    return Message(f"m{i}", i, "c", "track", "e", body)


def batches(messages: list[Message], **limits: int) -> list[MessageColumns]:
    """The requests the sender makes of these messages, as it makes them."""
    columns = MessageColumns.from_messages("track", messages)
    return [columns.slice(a, b) for a, b in request_bounds(columns.sizes, **limits)]


def request_body(group: MessageColumns, sent_at: str) -> bytes:
    return group.request_body(sent_at)


def ids(group: MessageColumns) -> list[str]:
    return group.message_id.to_pylist()


sizes = st.lists(st.integers(min_value=0, max_value=MAX_MESSAGE_BYTES - 60), max_size=400)


@settings(max_examples=60, deadline=None)
@given(
    sizes=sizes,
    max_count=st.integers(1, 50),
    max_bytes=st.integers(MAX_MESSAGE_BYTES + 100, 200_000),
)
def test_no_request_breaks_a_limit_and_every_message_is_sent_once(sizes, max_count, max_bytes):
    messages = [message(i, s) for i, s in enumerate(sizes)]
    groups = list(batches(messages, max_bytes=max_bytes, max_count=max_count))
    for group in groups:
        assert 1 <= len(group) <= max_count
        assert len(request_body(group, SENT_AT)) <= max_bytes
    assert [i for g in groups for i in ids(g)] == [m.message_id for m in messages]


@settings(max_examples=10, deadline=None)
@given(count=st.integers(2600, 6000), big=st.integers(0, 400), seed=st.integers(0, 2**32))
def test_segment_limits_hold_for_real_sizes(count, big, seed):
    rng = random.Random(seed)  # sizes drawn here: thousands of hypothesis draws would be too many
    sizes = [rng.randint(0, big) for _ in range(count)]
    groups = list(batches([message(i, s) for i, s in enumerate(sizes)]))
    assert all(len(g) <= SEGMENT_MAX_MESSAGES_PER_REQUEST for g in groups)
    assert all(len(request_body(g, SENT_AT)) <= SEGMENT_MAX_REQUEST_BYTES for g in groups)
    assert sum(len(g) for g in groups) == len(sizes)


def test_small_messages_are_grouped_2500_to_a_request():
    # Real sync messages are over 200 bytes, so at the wire 500,000 bytes binds first; the
    # count limit only shows with messages this small.
    groups = list(batches([message(i, 0) for i in range(6_000)]))
    assert [len(g) for g in groups] == [2_500, 2_500, 1_000]


def test_a_request_is_filled_to_exactly_500000_bytes_counting_its_envelope_and_no_further():
    # 99 messages of about 5,000 bytes, their commas and the envelope leave room for one message
    # of exactly the rest: the body is then 500,000 bytes; one byte more and it goes next time.
    head = [message(i, 5_000) for i in range(99)]
    envelope = len(b'{"batch":[') + len(b'],"sentAt":"') + len(SENT_AT) + len(b'"}')
    rest = 500_000 - envelope - sum(len(m.body) + 1 for m in head)
    padding = rest - len(message(99, 0).body)
    [group] = batches([*head, message(99, padding)])
    assert len(request_body(group, SENT_AT)) == 500_000
    first, second = batches([*head, message(99, padding + 1)])
    assert (len(first), len(second)) == (99, 1)


def test_request_body_is_valid_json_with_the_batch():
    group = MessageColumns.from_messages("track", [message(1, 3), message(2, 4)])
    parsed = orjson.loads(request_body(group, SENT_AT))
    assert [m["messageId"] for m in parsed["batch"]] == ["m1", "m2"]
    assert parsed["sentAt"] == SENT_AT


def test_a_slice_of_the_columns_is_a_request_of_exactly_those_messages():
    columns = MessageColumns.from_messages("track", [message(i, i) for i in range(5)])
    parsed = orjson.loads(columns.slice(1, 4).request_body(SENT_AT))
    assert [m["messageId"] for m in parsed["batch"]] == ["m1", "m2", "m3"]


def test_the_sizes_are_each_message_json_without_its_separator():
    messages = [message(i, 10 * i) for i in range(4)]
    columns = MessageColumns.from_messages("track", messages)
    assert columns.sizes.tolist() == [len(m.body) for m in messages]


def test_message_larger_than_a_request_is_refused_not_dropped():
    with pytest.raises(ValueError, match="cannot fit"):
        batches([message(1, 2000)], max_bytes=1000)
