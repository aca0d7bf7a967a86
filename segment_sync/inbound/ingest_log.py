"""The rows an ingest run writes: `inbound_log` per event (sent or not), `inbound_items` per buffered
item and mapping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from segment_sync.antavo.client import AntavoRequestRecord, EventResult
from segment_sync.inbound.buffer import BufferItem
from segment_sync.redaction import Redactor


def item_row(
    redactor: Redactor,
    item: BufferItem,
    run_id: str,
    mapping: str | None,
    outcome: str,
    event: dict[str, Any] | None = None,
    result: EventResult | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One `inbound_items` row."""
    return {
        "timestamp": datetime.now(UTC),
        "buffer_item_id": item.id,
        "message_id": item.message_id,
        "run_id": run_id,
        "event_type": _segment_type(item),
        "mapping_name": mapping,
        "outcome": outcome,
        # Masked by the log writer, as every text column (the run's redactor is one of its own).
        "antavo_action": _str(event.get("action")) if event else None,
        "customer_id": _str(event.get("customer")) if event else None,
        "antavo_event_id": result.event_id if result else None,
        "error": redactor.text(error or (result.error if result else None)),
        "identifier": result.identifier if result else None,
    }


def _text(redactor: Redactor, value: Any) -> str | None:
    """A mapped value as logged: text, any secret in it masked (a mapping may take one)."""
    return None if value is None else redactor.text(str(value))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _segment_type(item: BufferItem) -> str | None:
    kind = item.payload.get("type")
    return kind if isinstance(kind, str) else None


def _received(item: BufferItem, mapping: str | None) -> dict[str, Any]:
    """The columns saying which received event (and mapping) a row is about."""
    return {
        "event_type": _segment_type(item),
        "message_id": item.message_id,
        "mapping_name": mapping,
        "buffer_item_id": item.id,
    }


def request_rows(
    record: AntavoRequestRecord, run_id: str, sources: Sequence[tuple[BufferItem, str]]
) -> list[dict[str, Any]]:
    """One inbound_log row per event of the request, with that event's own status and code.

    `sources[i]` is the buffered item and mapping behind event `i` of the `send_events` call.
    The client has already redacted every text in the record (see AntavoClient).
    """
    shared = {
        "timestamp": record.started_at,
        "identifier": record.identifier,
        "run_id": run_id,
        "request_status_code": record.status_code,
        "response_time_s": record.response_time_s,
        "event_count": record.event_count,
    }
    return [
        {
            **shared,
            **_received(*sources[event.index]),
            "customer_id": event.customer,
            "action": event.action,
            "status": "success" if event.ok else "unknown" if event.unknown else "error",
            "status_code": event.status_code,
            "event_id": event.event_id,
            "error": event.error,
            "request_body": event.request_body,
            "response_body": event.response_body,
        }
        for event in record.events
    ]


def unsent_row(
    redactor: Redactor,
    item: BufferItem,
    run_id: str,
    mapping: str | None,
    status: str,
    error: str,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An inbound_log row for a received event that was never sent: "error" or "skipped".

    The customer is the mapped one if the mapping got that far, else Segment's userId, so a
    search by customer finds why their event never reached Antavo.
    """
    customer = (event or {}).get("customer")
    if customer is None:
        customer = item.payload.get("userId")
    return {
        "timestamp": datetime.now(UTC),
        "run_id": run_id,
        **_received(item, mapping),
        "customer_id": _text(redactor, customer),
        "action": _text(redactor, (event or {}).get("action")),
        "status": status,
        "error": redactor.text(error),
    }
