"""Group messages into /v1/batch requests under Segment's limits (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from segment_sync.segment.messages import Message

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGES_PER_REQUEST = 2500
_PREFIX = b'{"batch":['
_SUFFIX_TEMPLATE = b'],"sentAt":"0000-00-00T00:00:00.000Z"}'


def request_body(messages: list[Message], sent_at: str) -> bytes:
    """The /v1/batch JSON body for these messages."""
    return b"".join(
        (_PREFIX, b",".join(m.body for m in messages), b'],"sentAt":"', sent_at.encode(), b'"}')
    )


def envelope_size(count: int) -> int:
    """Bytes a request adds around `count` message bodies (brackets, commas, sentAt)."""
    return len(_PREFIX) + len(_SUFFIX_TEMPLATE) + max(count - 1, 0)


def batches(
    messages: Iterable[Message],
    max_bytes: int = MAX_REQUEST_BYTES,
    max_count: int = MAX_MESSAGES_PER_REQUEST,
) -> Iterator[list[Message]]:
    """Consecutive groups whose request body stays within max_bytes and max_count.

    Messages must each fit a request on their own (the 32 KB per-message check comes first).
    """
    current: list[Message] = []
    size = envelope_size(0)
    for message in messages:
        added = message.size + (1 if current else 0)
        if current and (len(current) >= max_count or size + added > max_bytes):
            yield current
            current, size = [], envelope_size(0)
            added = message.size
        if size + added > max_bytes:
            raise ValueError(
                f"message {message.message_id} is {message.size} bytes and cannot fit a "
                f"{max_bytes}-byte request"
            )
        current.append(message)
        size += added
    if current:
        yield current
