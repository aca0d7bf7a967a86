"""The `outbound_messages` log rows, built column-wise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa

from segment_sync.loyalty.records import Stream
from segment_sync.segment.client import Attempt
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.messages import NotSent


def _same(value: object, n: int) -> pa.Array:
    """One value n times, without a Python list of n items."""
    # A typed scalar: pa.repeat converts a bare datetime once per element (milliseconds).
    return pa.nulls(n) if value is None else pa.repeat(pa.scalar(value), n)


def message_columns(
    items: MessageColumns | Sequence[NotSent],
    run_id: str,
    stream: Stream,
    attempt: Attempt | None = None,
    outcome: str | None = None,
    error: str | None = None,
) -> dict[str, list]:
    """`outbound_messages` rows as columns; NotSent items carry their own outcome and reason,
    messages take the request's `attempt`, `outcome` and `error`."""
    n = len(items)
    if isinstance(items, MessageColumns):
        return {
            "timestamp": _same(attempt.started_at if attempt else datetime.now(UTC), n),
            "message_id": items.message_id,
            "identifier": _same(attempt.identifier if attempt else None, n),
            "run_id": _same(run_id, n),
            "stream": _same(stream.value, n),
            "source_id": items.source_id,
            "customer_id": items.customer_id,
            "event_type": _same(items.event_type, n),
            "event_name": items.event_name,
            "outcome": _same(outcome, n),
            "error": _same(error, n),
            "size_bytes": items.sizes,
        }
    own = outcome is None
    return {
        "timestamp": [attempt.started_at if attempt else datetime.now(UTC)] * n,
        "message_id": [m.message_id for m in items],
        "identifier": [attempt.identifier if attempt else None] * n,
        "run_id": [run_id] * n,
        "stream": [stream.value] * n,
        "source_id": [m.source_id for m in items],
        "customer_id": [m.customer_id for m in items],
        "event_type": [m.event_type for m in items],
        "event_name": [m.event_name for m in items],
        "outcome": [m.outcome for m in items] if own else [outcome] * n,
        "error": [m.reason for m in items] if own else [error] * n,
        "size_bytes": [m.size for m in items],
    }
