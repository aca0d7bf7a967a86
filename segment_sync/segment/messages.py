"""Loyalty rows -> Segment Track/Identify messages (pure: no Dagster, no HTTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
from orjson import Fragment

from segment_sync import LIBRARY_NAME, __version__
from segment_sync.loyalty.records import ORIGIN_SEGMENT, LoyaltyEvent, ProfileChange

MAX_MESSAGE_BYTES = 32 * 1024
# orjson (the JSON library of the per-row builder and of the Segment stand-in, our model of how
# Segment reads a message) writes at most this many nested levels.
MAX_DEPTH = 254
# Re-serialising JSON text grows nothing but numbers that orjson (the model of how Segment reads
# a message) writes longer: one with an exponent (`1e5` is 100000.0), a point after 17 digits
# (1e16 and up are written 1.2345678901234568e+16), or an integer beyond 64 bits (19 digits
# negative, 20 any), each at most 4.5 times (`1e15` is 1000000000000000.0). So a message without
# one is never longer re-serialised than sent, and one of at most SURELY_FITS_BYTES stays within
# the limit anyway. (Checked against 3.4 million generated numbers.)
GROWING_NUMBER = r"[0-9][eE]|[0-9]{17}\.|-[0-9]{19}|[0-9]{20}"
SURELY_FITS_BYTES = MAX_MESSAGE_BYTES * 2 // 9
_growing = re.compile(GROWING_NUMBER.encode())
CONTEXT = {"library": {"name": LIBRARY_NAME, "version": __version__}}

IdMapping = Literal["customer_id", "external_customer_id"]


@dataclass(frozen=True, slots=True)
class Message:
    """A message ready to batch: its serialised JSON and what the logs need to know about it."""

    message_id: str
    source_id: int
    customer_id: str
    event_type: str  # track | identify
    event_name: str | None
    body: bytes
    occurred_ms: int = 0  # the event time, ms since the epoch (for delivery latency)

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True, slots=True)
class NotSent:
    """A source row that produced no message, and why (skipped is expected, failed is not)."""

    message_id: str
    source_id: int
    customer_id: str | None
    event_type: str
    event_name: str | None
    outcome: Literal["skipped", "failed"]
    reason: str
    size: int = 0


def iso_timestamp(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. 2026-11-28T17:52:06.123Z."""
    v = value if value.tzinfo is UTC else value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        f".{v.microsecond // 1000:03d}Z"
    )


def _dumps(message: dict) -> bytes:
    # orjson keeps a ~4 KiB buffer behind each small result; a copy keeps only the bytes.
    return bytes(memoryview(orjson.dumps(message)))


def _unwritable(message_id: str, source_id: int, customer_id: str, kind: str,
                name: str | None, what: str, exc: orjson.JSONEncodeError) -> NotSent:  # fmt: skip
    """A message whose data, given as objects, orjson cannot write (too deep, a huge integer)."""
    if "recursion" in str(exc).lower():
        reason = f"message is nested more than {MAX_DEPTH} levels deep; it was not sent"
    else:
        reason = f"message cannot be written as JSON ({exc}); it was not sent"
    return NotSent(
        message_id, source_id, customer_id, kind, name, "failed", f"{reason} (fix {what})"
    )


def message_id(kind: str, row_id: int, occurred_at: datetime) -> str:
    """Deterministic per source row, so a resend is deduplicated by Segment (<= 100 chars).

    The row id makes it unique in the store; the event time (ms) keeps it unique if a store is
    ever rebuilt with reused ids.
    """
    return f"ss-{kind}-{row_id}-{event_ms(occurred_at):x}"


def event_ms(occurred_at: datetime) -> int:
    """The event time in ms since the epoch, as the messageId carries it."""
    return int(occurred_at.timestamp() * 1000)


def user_id(row: LoyaltyEvent | ProfileChange, mapping: IdMapping) -> str | None:
    return row.customer_id if mapping == "customer_id" else row.external_customer_id


def _missing_id(mapping: IdMapping, row: LoyaltyEvent | ProfileChange) -> str:
    return (
        f"customer {row.customer_id} has no {mapping}, which customer_id_mapping uses as the "
        f"Segment userId; set the customer's {mapping} or change general.customer_id_mapping"
    )


def _surely_fits(body: bytes) -> bool:
    """`refusal` can pass these bytes without parsing them (the columnar builder asks the same
    of its SQL): shallower than MAX_DEPTH, and no longer than the limit once re-serialised."""
    size = len(body)
    if size >= 2 * MAX_DEPTH and body.count(b"[") + body.count(b"{") >= MAX_DEPTH:
        return False
    return size <= SURELY_FITS_BYTES or not _growing.search(body)


def refusal(body: bytes) -> str | None:
    """Why Segment would refuse these message bytes, or None: the one check both builders make.

    Measured on the exact bytes sent, and, where they could grow past the limit once parsed
    and re-serialised (numbers such as `1e5` become `100000.0`), on that re-serialisation too.
    """
    size = len(body)
    if size > MAX_MESSAGE_BYTES:
        return (
            f"message is {size} bytes, over Segment's {MAX_MESSAGE_BYTES}-byte limit per "
            "message; it was not sent (shrink the event data)"
        )
    if _surely_fits(body):
        return None
    try:
        again = len(orjson.dumps(orjson.loads(body)))
    except orjson.JSONEncodeError:
        return (
            f"message is nested more than {MAX_DEPTH} levels deep; it was not sent "
            "(flatten the event data)"
        )
    except orjson.JSONDecodeError as exc:
        return f"message is not JSON Segment can read ({exc}); it was not sent"
    if again > MAX_MESSAGE_BYTES:
        return (
            f"message is {size} bytes as sent but {again} bytes once Segment re-serialises its "
            f"numbers (e.g. 1e5 as 100000.0), over Segment's {MAX_MESSAGE_BYTES}-byte limit per "
            "message; it was not sent (shrink the event data, or write its numbers out in full)"
        )
    return None


def _checked(message: Message, event_name: str | None) -> Message | NotSent:
    reason = refusal(message.body)
    if reason is None:
        return message
    return NotSent(
        message.message_id,
        message.source_id,
        message.customer_id,
        message.event_type,
        event_name,
        "failed",
        reason,
        message.size,
    )


def track_message(
    event: LoyaltyEvent, mapping: IdMapping, event_sync: frozenset[str]
) -> Message | NotSent | None:
    """A Track call for an allow-listed event; None when the action is not allow-listed."""
    if event.action not in event_sync:
        return None
    mid = message_id("evt", event.id, event.occurred_at)
    if event.origin == ORIGIN_SEGMENT:
        return NotSent(
            mid, event.id, event.customer_id, "track", event.action, "skipped",
            "came in from Segment through the inbound path; not echoed back",
        )  # fmt: skip
    uid = user_id(event, mapping)
    if not uid:
        return NotSent(
            mid, event.id, event.customer_id, "track", event.action, "failed",
            _missing_id(mapping, event),
        )  # fmt: skip
    try:
        body = _dumps(
            {
                "type": "track",
                "event": event.action,
                "userId": uid,
                # As stored, when read from the store: the bytes the columnar builder sends.
                "properties": event.data if event.data_json is None else Fragment(event.data_json),
                "timestamp": iso_timestamp(event.occurred_at),
                "messageId": mid,
                "context": CONTEXT,
            }
        )
    except orjson.JSONEncodeError as exc:  # data given as objects (not stored text)
        return _unwritable(mid, event.id, uid, "track", event.action, "the event data", exc)
    message = Message(mid, event.id, uid, "track", event.action, body, event_ms(event.occurred_at))
    return _checked(message, event.action)


def identify_message(
    change: ProfileChange, mapping: IdMapping, customer_fields: frozenset[str]
) -> Message | NotSent:
    """An Identify call carrying only allow-listed attributes, or why none is sent."""
    mid = message_id("prf", change.id, change.occurred_at)
    if change.origin == ORIGIN_SEGMENT:
        return NotSent(
            mid, change.id, change.customer_id, "identify", None, "skipped",
            "came in from Segment through the inbound path; not echoed back",
        )  # fmt: skip
    traits = {k: v for k, v in change.attributes.items() if k in customer_fields}
    if not traits:
        changed = ", ".join(sorted(change.attributes)) or "nothing"
        return NotSent(
            mid, change.id, change.customer_id, "identify", None, "skipped",
            f"no allow-listed field changed (changed: {changed}; "
            "outbound.customer_fields_sync lists what is sent)",
        )  # fmt: skip
    uid = user_id(change, mapping)
    if not uid:
        return NotSent(
            mid, change.id, change.customer_id, "identify", None, "failed",
            _missing_id(mapping, change),
        )  # fmt: skip
    try:
        body = _dumps(
            {
                "type": "identify",
                "userId": uid,
                "traits": traits,
                "timestamp": iso_timestamp(change.occurred_at),
                "messageId": mid,
                "context": CONTEXT,
            }
        )
    except orjson.JSONEncodeError as exc:  # traits are re-serialised, never passed through
        return _unwritable(mid, change.id, uid, "identify", None, "the customer's attributes", exc)
    message = Message(mid, change.id, uid, "identify", None, body, event_ms(change.occurred_at))
    return _checked(message, None)
