"""The rows an ingest run writes: `inbound_log` per event of an Antavo request, `inbound_items` per
buffered item and mapping."""

from __future__ import annotations

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
        "event_type": item.payload.get("type")
        if isinstance(item.payload.get("type"), str)
        else None,
        "mapping_name": mapping,
        "outcome": outcome,
        "antavo_action": (event or {}).get("action"),
        "customer_id": (event or {}).get("customer"),
        "antavo_event_id": result.event_id if result else None,
        "error": redactor.text(error or (result.error if result else None)),
        "identifier": result.identifier if result else None,
    }


def request_rows(record: AntavoRequestRecord, run_id: str) -> list[dict[str, Any]]:
    """One inbound_log row per event of the request: the manual's columns are per event.

    The client has already redacted every text in the record (see AntavoClient).
    """
    shared = {
        "timestamp": record.started_at,
        "identifier": record.identifier,
        "run_id": run_id,
        "status_code": record.status_code,
        "response_time_s": record.response_time_s,
        "event_count": record.event_count,
    }
    return [
        {
            **shared,
            "customer_id": event.customer,
            "action": event.action,
            "status": "success" if event.ok else "error",
            "event_id": event.event_id,
            "error": event.error,
            "request_body": event.request_body,
            "response_body": event.response_body,
        }
        for event in record.events
    ]
