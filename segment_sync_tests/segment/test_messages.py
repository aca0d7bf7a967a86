"""Loyalty rows become Segment Track and Identify messages."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from segment_sync import __version__
from segment_sync.loyalty.records import LoyaltyEvent, ProfileChange
from segment_sync.segment.messages import (
    MAX_MESSAGE_BYTES,
    Message,
    NotSent,
    identify_message,
    iso_timestamp,
    message_id,
    track_message,
)

WHEN = datetime(2026, 11, 28, 17, 52, 6, 123456, tzinfo=UTC)
ALLOWED = frozenset({"point_add", "checkout"})


def event(**changes) -> LoyaltyEvent:
    fields = dict(id=7, customer_id="c-1", external_customer_id="ext-1", action="point_add",
                  data={"points": 5}, occurred_at=WHEN, origin="loyalty")  # fmt: skip
    return LoyaltyEvent(**{**fields, **changes})


def change(**changes) -> ProfileChange:
    fields = dict(id=3, customer_id="c-1", external_customer_id="ext-1",
                  attributes={"email": "a@example.com", "tier": "gold"}, occurred_at=WHEN, origin="loyalty")  # fmt: skip
    return ProfileChange(**{**fields, **changes})


def body(message: Message) -> dict:
    return orjson.loads(message.body)


def test_track_carries_action_data_user_timestamp_and_library():
    sent = body(track_message(event(), "customer_id", ALLOWED))
    assert sent["type"] == "track"
    assert sent["event"] == "point_add"
    assert sent["properties"] == {"points": 5}
    assert sent["userId"] == "c-1"
    assert sent["timestamp"] == "2026-11-28T17:52:06.123Z"
    assert sent["context"]["library"] == {"name": "segment-sync", "version": __version__}


def test_track_user_id_follows_external_id_mapping():
    assert body(track_message(event(), "external_customer_id", ALLOWED))["userId"] == "ext-1"


def test_event_not_in_event_sync_produces_nothing():
    assert track_message(event(action="opt_in"), "customer_id", ALLOWED) is None


def test_customer_without_mapped_id_is_a_failure_that_says_why():
    result = track_message(event(external_customer_id=None), "external_customer_id", ALLOWED)
    assert isinstance(result, NotSent)
    assert result.outcome == "failed"
    assert "no external_customer_id" in result.reason


def test_event_that_came_from_segment_is_not_echoed_back():
    result = track_message(event(origin="segment"), "customer_id", ALLOWED)
    assert isinstance(result, NotSent) and result.outcome == "skipped"
    assert "not echoed" in result.reason


def test_message_id_is_deterministic_and_at_most_100_chars():
    first = track_message(event(), "customer_id", ALLOWED)
    again = track_message(event(), "customer_id", ALLOWED)
    assert first.message_id == again.message_id
    assert len(message_id("evt", 10**18, WHEN)) <= 100


def test_message_ids_differ_between_rows_and_kinds():
    assert message_id("evt", 1, WHEN) != message_id("evt", 2, WHEN)
    assert message_id("evt", 1, WHEN) != message_id("prf", 1, WHEN)


def test_message_over_32kb_fails_with_its_size_and_is_not_sent():
    result = track_message(event(data={"blob": "x" * MAX_MESSAGE_BYTES}), "customer_id", ALLOWED)
    assert isinstance(result, NotSent) and result.outcome == "failed"
    assert str(result.size) in result.reason and result.size > MAX_MESSAGE_BYTES


def test_identify_carries_only_allow_listed_traits():
    sent = body(identify_message(change(), "customer_id", frozenset({"email", "first_name"})))
    assert sent["type"] == "identify"
    assert sent["traits"] == {"email": "a@example.com"}
    assert sent["userId"] == "c-1"


def test_identify_with_no_allow_listed_field_is_skipped_with_reason():
    result = identify_message(change(), "customer_id", frozenset({"first_name"}))
    assert isinstance(result, NotSent) and result.outcome == "skipped"
    assert "no allow-listed field" in result.reason and "tier" in result.reason


def test_timestamps_are_utc_with_milliseconds():
    assert (
        iso_timestamp(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == "2026-01-02T03:04:05.006Z"
    )


def stored(text: str) -> LoyaltyEvent:
    """An event as read from the store: its data text goes out as stored."""
    return event(data=orjson.loads(text), data_json=text)


def padded_to(size: int) -> LoyaltyEvent:
    """An event whose Track message is exactly `size` bytes."""
    envelope = len(track_message(stored('{"pad":""}'), "customer_id", ALLOWED).body)
    return stored('{"pad":"' + "x" * (size - envelope) + '"}')


def test_a_message_of_32768_bytes_is_sent_and_one_of_32769_is_refused():
    fits = track_message(padded_to(32_768), "customer_id", ALLOWED)
    assert isinstance(fits, Message) and fits.size == 32_768
    over = track_message(padded_to(32_769), "customer_id", ALLOWED)
    assert isinstance(over, NotSent) and over.reason.startswith("message is 32769 bytes")


def test_the_stored_data_is_sent_byte_for_byte():
    text = '{"big":1E5, "zero":-0,"s":"\\u00e9"}'
    message = track_message(stored(text), "customer_id", ALLOWED)
    assert b'"properties":' + text.encode() + b',"timestamp"' in message.body


def test_a_message_that_grows_past_32768_bytes_when_re_serialised_is_refused_with_both_sizes():
    grown = track_message(stored('{"n":[' + "1e5," * 7_499 + "1e5]}"), "customer_id", ALLOWED)
    assert isinstance(grown, NotSent) and grown.outcome == "failed"
    assert grown.reason.startswith(f"message is {grown.size} bytes as sent but ")
    again = int(grown.reason.split(" bytes as sent but ")[1].split()[0])
    assert grown.size <= 32_768 < again


def test_a_message_that_grows_but_stays_within_32768_bytes_is_sent():
    message = track_message(stored('{"n":[' + "1e5," * 3_000 + "1e5]}"), "customer_id", ALLOWED)
    assert isinstance(message, Message)
    assert len(orjson.dumps(orjson.loads(message.body))) <= 32_768


def test_a_message_nested_254_levels_is_sent_and_255_is_refused():
    def nested(levels: int) -> LoyaltyEvent:  # the message object is one level, data the rest
        return stored('{"a":' + "[" * (levels - 2) + "]" * (levels - 2) + "}")

    assert isinstance(track_message(nested(254), "customer_id", ALLOWED), Message)
    deep = track_message(nested(255), "customer_id", ALLOWED)
    assert isinstance(deep, NotSent) and "nested more than 254 levels" in deep.reason


def test_identify_traits_nested_254_levels_are_sent_and_255_are_refused_with_the_reason():
    def nested(
        levels: int,
    ) -> ProfileChange:  # message and traits are two levels, the value the rest
        value = orjson.loads("[" * (levels - 2) + "]" * (levels - 2))
        return change(attributes={"email": value})

    assert isinstance(identify_message(nested(254), "customer_id", frozenset({"email"})), Message)
    deep = identify_message(nested(255), "customer_id", frozenset({"email"}))
    assert isinstance(deep, NotSent) and deep.outcome == "failed"
    assert "nested more than 254 levels" in deep.reason and "Recursion" not in deep.reason


def test_track_data_nested_255_levels_given_as_objects_is_refused_with_the_reason():
    levels = 255  # data given as Python objects (not stored JSON text): serialised here
    deep = track_message(
        event(data={"a": orjson.loads("[" * (levels - 2) + "]" * (levels - 2))}),
        "customer_id",
        ALLOWED,
    )
    assert isinstance(deep, NotSent) and "nested more than 254 levels" in deep.reason


def test_identify_with_an_integer_json_cannot_carry_fails_alone_naming_it():
    failed = identify_message(
        change(attributes={"email": 2**70}), "customer_id", frozenset({"email"})
    )
    assert isinstance(failed, NotSent) and failed.outcome == "failed"
    assert "cannot be written as JSON" in failed.reason and "attributes" in failed.reason
