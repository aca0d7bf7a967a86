"""Source rows to Segment messages under the allow-lists and the ID mapping; a row that cannot be built becomes a NotSent, never an exception."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from segment_sync.loyalty.records import BadRow, LoyaltyEvent, ProfileChange, Stream
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.messages import (
    Message,
    NotSent,
    identify_message,
    message_id,
    track_message,
)
from segment_sync.settings import Settings

EVENT_TYPES = {Stream.EVENTS: "track", Stream.PROFILES: "identify"}


@dataclass(slots=True)
class BuiltChunk:
    """A chunk of source rows as messages to send, the rows not sent (with why), and counts."""

    messages: MessageColumns
    not_sent: list[NotSent]
    rows_read: int
    not_allow_listed: int


def built_from_records(
    rows: Sequence[LoyaltyEvent | BadRow] | Sequence[ProfileChange | BadRow],
    settings: Settings,
    stream: Stream,
) -> BuiltChunk:
    """`build_messages` of records (replay, reconciliation) in the shape the sender takes."""
    messages, not_sent, not_allow_listed = build_messages(rows, settings, stream)
    columns = MessageColumns.from_messages(EVENT_TYPES[stream], messages)
    return BuiltChunk(columns, not_sent, len(rows), not_allow_listed)


def build_messages(
    rows: Sequence[LoyaltyEvent | BadRow] | Sequence[ProfileChange | BadRow],
    settings: Settings,
    stream: Stream,
) -> tuple[list[Message], list[NotSent], int]:
    """Messages to send, rows not sent (with why), and how many events were not allow-listed.

    A row that cannot become a message (unreadable column, anything the builder raises) is one
    failed NotSent naming the row and the column; the rest of the rows are unaffected.
    """
    mapping = settings.general.customer_id_mapping
    messages: list[Message] = []
    not_sent: list[NotSent] = []
    not_allow_listed = 0
    if stream is Stream.EVENTS:
        allowed = frozenset(settings.outbound.event_sync)
        for row in rows:
            try:  # a BadRow has no columns to build from: it raises here, as a broken row does
                built = track_message(row, mapping, allowed)
            except Exception as exc:
                built = _unbuildable(row, stream, exc)
            if built is None:
                not_allow_listed += 1
            elif isinstance(built, Message):
                messages.append(built)
            else:
                not_sent.append(built)
    else:
        fields = frozenset(settings.outbound.customer_fields_sync)
        for row in rows:
            try:
                built = identify_message(row, mapping, fields)
            except Exception as exc:
                built = _unbuildable(row, stream, exc)
            (messages if isinstance(built, Message) else not_sent).append(built)
    table = _KINDS[stream][2]
    return messages, [_naming_the_row(n, table) for n in not_sent], not_allow_listed


_KINDS = {
    Stream.EVENTS: ("evt", "track", "loyalty_events"),
    Stream.PROFILES: ("prf", "identify", "profile_changes"),
}


def _naming_the_row(item: NotSent, table: str) -> NotSent:
    """A failure's reason starts with the row it is about (`loyalty_events id 17: ...`)."""
    prefix = f"{table} id {item.source_id}: "
    if item.outcome != "failed" or item.reason.startswith(prefix):
        return item
    return replace(item, reason=prefix + item.reason)


def unbuilt_message_id(row: object, stream: Stream) -> str:
    """The messageId a row that is not sent is logged under (the regular one, if it reads)."""
    kind = _KINDS[stream][0]
    occurred_at = getattr(row, "occurred_at", None)
    return message_id(kind, row.id, occurred_at) if occurred_at else f"ss-{kind}-{row.id}-unread"


def _unbuildable(row: object, stream: Stream, exc: Exception) -> NotSent:
    """The failed NotSent of a row the store could not read or the builder could not handle."""
    kind, event_type, table = _KINDS[stream]
    if isinstance(row, BadRow):
        reason = row.reason
    else:
        reason = (
            f"{table} id {row.id}: the message could not be built "
            f"({type(exc).__name__}: {exc}); fix the row, then replay"
        )
    mid = unbuilt_message_id(row, stream)
    action = getattr(row, "action", None) if stream is Stream.EVENTS else None
    return NotSent(
        mid, row.id, row.customer_id, event_type, action, "failed", reason[:2000]
    )  # fmt: skip
