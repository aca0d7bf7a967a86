"""The rows an ingest run writes: `inbound_log` per event of an Antavo request, `inbound_items` per
buffered item and mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

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


def request_rows(
    redactor: Redactor, record: AntavoRequestRecord, run_id: str
) -> list[dict[str, Any]]:
    """One inbound_log row per event of the request: the manual's columns are per event."""
    events = _request_events(record.request_body)
    results = _event_results(record.response_body, len(events)) if record.error is None else {}
    rows = []
    for index, event in enumerate(events or [None]):
        result = results.get(index)
        error = record.error or _result_error(result)
        rows.append(
            {
                "timestamp": record.started_at,
                "customer_id": _text((event or {}).get("customer")),
                "action": _text((event or {}).get("action")),
                "status": "error" if error else "success",
                "event_id": _result_event_id(result),
                "error": redactor.text(error),
                "identifier": record.identifier,
                "run_id": run_id,
                "status_code": record.status_code,
                "response_time_s": record.response_time_s,
                "event_count": record.event_count,
                "request_body": redactor.text(
                    orjson.dumps(event).decode() if event else record.request_body
                ),
                "response_body": redactor.text(
                    orjson.dumps(result).decode() if result else record.response_body
                ),
            }
        )
    return rows


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _request_events(body: str) -> list[dict[str, Any]]:
    """The events of a /events (one object) or /events/bulk ({"events": [...]}) request body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if isinstance(parsed, dict) and isinstance(parsed.get("events"), list):
        return [e for e in parsed["events"] if isinstance(e, dict)]
    return [parsed] if isinstance(parsed, dict) else []


def _event_results(body: str | None, count: int) -> dict[int, dict[str, Any]]:
    """Per-event results by position: bulk answers {"results": [...]} in input order; a single
    /events call answers with the customer (its registered events) or an error object."""
    try:
        parsed = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    if isinstance(parsed.get("results"), list):
        return {i: r for i, r in enumerate(parsed["results"][:count]) if isinstance(r, dict)}
    return {0: parsed} if count == 1 else {}


def _result_error(result: dict[str, Any] | None) -> str | None:
    error = (result or {}).get("error")
    if not isinstance(error, dict):
        return None
    return f"{error.get('message', 'error')} ({error.get('type', '')} {error.get('code', '')})".replace(
        " )", ")"
    )


def _result_event_id(result: dict[str, Any] | None) -> str | None:
    events = (result or {}).get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict) and events[0].get("id"):
        return str(events[0]["id"])
    return None
