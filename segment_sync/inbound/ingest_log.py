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


def item_columns(
    redactor: Redactor, run_id: str, answered: Sequence[tuple[Any, str]]
) -> dict[str, list[Any]]:
    """The `inbound_items` rows of sent events as a list per column (LogWriter.extend_lists):
    `answered` holds each event's plan (item, mapping, event, result) and its item's outcome."""
    plans = [plan for plan, _ in answered]
    items = [plan.item for plan in plans]
    results = [plan.result for plan in plans]
    events = [plan.event for plan in plans]
    count = len(plans)
    return {
        "timestamp": [datetime.now(UTC)] * count,
        "buffer_item_id": [item.id for item in items],
        "message_id": [item.message_id for item in items],
        "run_id": [run_id] * count,
        "event_type": [_segment_type(item) for item in items],
        "mapping_name": [plan.mapping for plan in plans],
        "outcome": [outcome for _, outcome in answered],
        # Masked by the log writer, as every text column (the run's redactor is one of its own).
        "antavo_action": [_str(event.get("action")) for event in events],
        "customer_id": [_str(event.get("customer")) for event in events],
        "antavo_event_id": [r.event_id for r in results],
        "error": [None if r.error is None else redactor.text(r.error) for r in results],
        "identifier": [r.identifier for r in results],
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
) -> dict[str, list[Any]]:
    """The request's inbound_log rows as a list per column (LogWriter.extend_lists): one row
    per event of the request, with that event's own status and code.

    `sources[i]` is the buffered item and mapping behind event `i` of the `send_events` call.
    The client has already redacted every text in the record (see AntavoClient).
    """
    answers = record.columns
    count = len(answers.index)
    received = [sources[index] for index in answers.index]
    items = [item for item, _ in received]
    return {
        "timestamp": [record.started_at] * count,
        "identifier": [record.identifier] * count,
        "run_id": [run_id] * count,
        "request_status_code": [record.status_code] * count,
        "response_time_s": [record.response_time_s] * count,
        "event_count": [record.event_count] * count,
        "event_type": [
            kind if isinstance(kind := item.payload.get("type"), str) else None for item in items
        ],
        "message_id": [item.message_id for item in items],
        "mapping_name": [mapping for _, mapping in received],
        "buffer_item_id": [item.id for item in items],
        "customer_id": answers.customer,
        "action": answers.action,
        "status": [
            "success" if ok else "unknown" if unknown else "error"
            for ok, unknown in zip(answers.ok, answers.unknown, strict=True)
        ],
        "status_code": answers.status_code,
        "event_id": answers.event_id,
        "error": answers.error,
        "request_body": answers.request_body,
        "response_body": answers.response_body,
    }


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
