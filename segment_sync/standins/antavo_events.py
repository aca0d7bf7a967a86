"""How the Antavo stand-in registers events: `POST /events` and `/events/bulk` bodies checked,
stored and answered (see `segment_sync.standins.antavo` for the behaviour)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import Response

from segment_sync.standins.antavo_wire import (
    Rejection,
    bad_request,
    customer_not_found,
    event_summary,
    json_response,
)

log = logging.getLogger(__name__)

MAX_BULK_EVENTS = 50
_EVENT_FIELDS = ("customer", "action", "data", "account", "external_id")


class AntavoRegistration:
    """Event registration of `AntavoStandin`: validate, assign an ID, keep, answer."""

    # Set by AntavoStandin.__init__ and configure().
    _lock: threading.Lock
    known_customers: set[str] | None
    creating_actions: frozenset[str]
    bulk_answer_faults: deque[str]
    on_event: Callable[[dict, str], None] | None
    events: list[dict]
    _counts: Counter[str]
    _id_prefix: str
    _id_counter: Iterator[int]

    def _single(self, payload: Any) -> Response:
        """POST /events: register one event; answer a customer object."""
        event = self._register(payload)
        body = {"id": event["customer"], "status": "active", "events": [event_summary(event)]}
        return json_response(body)

    def _bulk(self, payload: Any) -> Response:
        """POST /events/bulk: register each event; per-event results in order."""
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events:
            raise bad_request("Missing required parameter 'events'")
        if len(events) > MAX_BULK_EVENTS:
            raise bad_request(
                f"Bulk request accepts at most {MAX_BULK_EVENTS} events, got {len(events)}",
                code=113402,
            )
        results: list[dict[str, Any]] = []
        for item in events:
            try:
                results.append({"events": [event_summary(self._register(item))]})
            except Rejection as exc:
                results.append(exc.body())
        errors = sum(1 for r in results if "error" in r)
        answer = {"results": results, "total": len(results), "errors": errors}
        with self._lock:
            fault = self.bulk_answer_faults.popleft() if self.bulk_answer_faults else None
        if fault == "one_short":  # injected: registered, but the answer loses the last result
            answer["results"] = results[:-1]
        elif fault == "malformed":  # injected: registered, but the answer is not JSON
            whole = json_response(answer).body
            return Response(
                whole[: len(whole) // 2],
                200,
                {"X-Standin": "antavo"},
                media_type="application/json",
            )
        return json_response(answer)

    def _register(self, item: Any) -> dict[str, Any]:
        """Validate, assign an ID, call `on_event`, keep it; the stored event, or a rejection."""
        try:
            event = self._validate(item)
        except Rejection:
            with self._lock:
                self._counts["events_rejected"] += 1
            raise
        with self._lock:
            event_id = f"{int(time.time()) & 0xFFFFFFFF:08x}{self._id_prefix}"
            event_id += f"{next(self._id_counter) & 0xFFFFFF:06x}"
        if self.on_event is not None:
            try:
                self.on_event(dict(event), event_id)
            except Exception:
                log.exception("on_event failed for event %s", event_id)
                with self._lock:
                    self._counts["events_rejected"] += 1
                raise Rejection(
                    500, "InternalServerErrorException", 100500, "Event could not be stored"
                ) from None
        stored = {"id": event_id, **event}
        with self._lock:
            if self.known_customers is not None:
                self.known_customers.add(event["customer"])
            self.events.append(stored)
            self._counts["events_registered"] += 1
        return stored

    def _validate(self, item: Any) -> dict[str, Any]:
        """The event's documented fields, or a 400/404 rejection."""
        if not isinstance(item, dict):
            raise bad_request("Event must be a JSON object")
        for name in ("customer", "action"):
            value = item.get(name)
            if not isinstance(value, str) or not value:
                raise bad_request(f"Missing required parameter '{name}'")
        data = item.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise bad_request("Parameter 'data' must be an object", code=113403)
        for name in ("account", "external_id"):
            if name in item and not isinstance(item[name], str):
                raise bad_request(f"Parameter '{name}' must be a string", code=113403)
        with self._lock:
            known = self.known_customers
            if (
                known is not None
                and item["customer"] not in known
                and item["action"] not in self.creating_actions
            ):
                raise customer_not_found()
        event = {name: item[name] for name in _EVENT_FIELDS if name in item}
        event["data"] = data
        return event
