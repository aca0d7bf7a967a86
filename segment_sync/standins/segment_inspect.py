"""What the Segment stand-in records about each request and shows under `/_standin/*`.

These routes are the stand-in's own: Segment has nothing like them. They let a test see what a
user of real Segment could not, e.g. `GET /_standin/dropped`: the messages answered 200 but
dropped (an unknown write key, a key of the other region, an invalid message).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.segment_wire import json_response

if TYPE_CHECKING:
    from segment_sync.standins.segment import SegmentStandin


def inspection_routes(standin: SegmentStandin) -> list[Route]:
    """The `/_standin/*` routes of one stand-in."""

    async def messages(request: Request) -> Response:
        """Accepted messages (only `{"messageId"}` stubs when keep_messages is off)."""
        return json_response(standin.message_list())

    async def message_ids(request: Request) -> Response:
        """Accepted messageIds in arrival order."""
        return json_response(standin.accepted_message_ids())

    async def arrivals(request: Request) -> Response:
        """Accepted messageIds in arrival order, each with the unix time it was accepted."""
        return json_response(standin.arrivals())

    async def requests(request: Request) -> Response:
        """One summary per `/v1/*` request."""
        return json_response(standin.request_records())

    async def stats(request: Request) -> Response:
        """Counters."""
        return json_response(standin.stats())

    async def dropped(request: Request) -> Response:
        """Messages answered 200 but dropped, by reason (unknown key, other region, invalid)."""
        return json_response(standin.dropped())

    async def reset(request: Request) -> Response:
        """Forget everything recorded so far."""
        standin.reset()
        return json_response({"ok": True})

    async def faults(request: Request) -> Response:
        """GET the current faults, or POST a JSON object of fields to change."""
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body())
                if not isinstance(changes, dict):
                    raise ValueError("faults body must be a JSON object")
                standin.set_faults(**changes)
            except (ValueError, TypeError) as exc:
                return json_response({"ok": False, "message": str(exc)}, 400)
        return json_response(asdict(standin.faults))

    return [
        Route("/_standin/messages", messages, methods=["GET"]),
        Route("/_standin/message_ids", message_ids, methods=["GET"]),
        Route("/_standin/arrivals", arrivals, methods=["GET"]),
        Route("/_standin/requests", requests, methods=["GET"]),
        Route("/_standin/stats", stats, methods=["GET"]),
        Route("/_standin/dropped", dropped, methods=["GET"]),
        Route("/_standin/reset", reset, methods=["POST"]),
        Route("/_standin/faults", faults, methods=["GET", "POST"]),
    ]


def empty_counts() -> dict[str, Any]:
    """Fresh counters."""
    return {
        "requests": 0,
        "requests_by_status": {},
        "messages_received": 0,
        "messages_accepted": 0,
        "messages_dropped": 0,
        "messages_dropped_by_reason": {},
        "requests_dropped_by_reason": {},
        "duplicate_message_ids": 0,
        "bytes_received": 0,
    }


def add_to_counts(counts: dict[str, Any], record: dict[str, Any]) -> None:
    """Add one finished request record to the counters (the caller holds the lock)."""
    counts["requests"] += 1
    _bump(counts["requests_by_status"], record["status"], 1)
    counts["messages_received"] += record["messages"]
    counts["messages_accepted"] += record["accepted"]
    counts["messages_dropped"] += record["dropped"]
    for reason, count in record["drop_reasons"].items():
        _bump(counts["messages_dropped_by_reason"], reason, count)
    if record["dropped_reason"] is not None:
        _bump(counts["requests_dropped_by_reason"], record["dropped_reason"], 1)
    counts["bytes_received"] += record["bytes"]


def _bump(counter: dict, key: Any, by: int) -> None:
    counter[key] = counter.get(key, 0) + by


def new_record(request: Request, raw_len: int) -> dict[str, Any]:
    """A request summary before processing (never carries the key)."""
    retry = request.headers.get("x-retry-count")
    return {
        "at": time.time(),
        "path": request.url.path,
        "status": None,
        "messages": 0,
        "accepted": 0,
        "dropped": 0,
        "dropped_over_limit": 0,
        "dropped_invalid": 0,
        "drop_reasons": {},
        "dropped_reason": None,  # the key's reason when every message was dropped for it
        "bytes": raw_len,
        "json_bytes": None,
        "gzip": request.headers.get("content-encoding", "").lower() == "gzip",
        "retry_count": int(retry) if retry and retry.isdigit() else None,
        "write_key_region": None,
        "error": None,
    }
