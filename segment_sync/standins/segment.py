"""LOCAL STAND-IN for one regional Segment HTTP Tracking API endpoint: tests and demo only.

This is not Segment and never a production target. It speaks the documented contract of
`POST /v1/batch` (and the single-message routes) closely enough for the real client to be
tested over loopback HTTP:

- auth: write key as the HTTP Basic username (empty password) or `writeKey` in the JSON body.
  A missing, unreadable, unknown or other-region key gets 200 and its messages are DROPPED, as
  Segment documents ("200 for all API requests except ... large payloads and JSON errors"; EU
  data sent to api.segment.io: "you might not see any errors, but your events will not
  appear"); only `GET /_standin/dropped` (and the stats) count them. `strict_auth=True`
  answers 401 instead: NOT Segment's documented behaviour, for tests of a client's 401
  handling only (see `segment_keys`);
- limits: 500,000 bytes per request (the JSON after gzip decompression; see
  `segment_wire.MAX_REQUEST_BYTES` for that reading of "500 KB") and 32 KB per message -> 400
  for the whole request, whatever the key; more than 2,500 messages in a batch -> 200, the
  surplus silently dropped;
- bad JSON or a missing `batch` list -> 400; invalid messages (no userId/anonymousId, no
  messageId, a track without `event`) -> still 200, the message dropped;
- injectable faults (5xx, 429 with Retry-After, outages, 400 rejections, delay, and a 400 for
  any request carrying a marked message, which real Segment does not do: see `segment_faults`),
  random ones drawn from a seeded RNG.

Where it deliberately differs from Segment: it keeps what it accepted in memory and shows it
(`/_standin/messages`), where Segment offers only its sampled source Debugger; the 401 of
`strict_auth`; the injected faults. Write keys never appear in a response, a log line, a
request record or a stored message.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.labels import SEGMENT_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.segment_faults import SegmentFaults
from segment_sync.standins.segment_ingest import SegmentIngest
from segment_sync.standins.segment_inspect import empty_counts, inspection_routes
from segment_sync.standins.segment_keys import KEY_DROP_REASONS, WriteKeys
from segment_sync.standins.segment_wire import (
    MAX_BATCH_MESSAGES,
    MESSAGE_TYPES,
    check_region,
    json_response,
)

__all__ = ["MAX_BATCH_MESSAGES", "SegmentFaults", "SegmentStandin", "create_segment_app"]


class SegmentStandin(SegmentIngest):
    """LOCAL STAND-IN for one regional Segment Tracking API endpoint; keeps what it accepted."""

    def __init__(
        self,
        region: str,
        write_keys: Mapping[str, str],
        faults: SegmentFaults | None = None,
        keep_messages: bool = True,
        *,
        strict_auth: bool = False,
    ) -> None:
        """`strict_auth`: 401 for a missing, unknown or other-region key, NOT Segment's
        documented behaviour (it answers 200 and drops the messages); for 401-handling tests."""
        check_region(region, "region")
        for key_region in write_keys.values():
            check_region(key_region, "write key region")
        self.region = region
        self._write_keys = WriteKeys(region, dict(write_keys), strict_auth=strict_auth)
        self.faults = faults or SegmentFaults()
        self.keep_messages = keep_messages
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.messages: list[dict] = []
        self.requests: list[dict] = []
        self._message_ids: list[str] = []
        self._arrivals: list[tuple[float, int]] = []  # (unix time, messages) per accepted request
        self._seen_ids: set[str] = set()
        self._counts = empty_counts()
        self.app = self._build_app()

    def __repr__(self) -> str:
        """Region and key count only: never the keys."""
        strict = ", strict_auth=True" if self._write_keys.strict_auth else ""
        return f"SegmentStandin(region={self.region!r}, write_keys={len(self._write_keys)}{strict})"

    def accepted_message_ids(self) -> list[str]:
        """messageIds of every accepted message, in arrival order (duplicates kept)."""
        with self._lock:
            return list(self._message_ids)

    def reset(self) -> None:
        """Forget accepted messages, request records and counters (faults stay as they are)."""
        with self._lock:
            self.messages.clear()
            self.requests.clear()
            self._message_ids.clear()
            self._arrivals.clear()
            self._seen_ids.clear()
            self._counts = empty_counts()

    def set_faults(self, **changes: Any) -> None:
        """Update fault fields; a new `seed` re-seeds the fault RNG."""
        self.faults.update(changes)
        if "seed" in changes:
            self._rng = random.Random(self.faults.seed)

    def stats(self) -> dict[str, Any]:
        """JSON-ready counters: requests by status, messages accepted/dropped, bytes."""
        with self._lock:
            counts = {k: dict(v) if isinstance(v, dict) else v for k, v in self._counts.items()}
        counts["requests_by_status"] = {
            str(k): v for k, v in sorted(counts["requests_by_status"].items())
        }
        return {"standin": "segment", "region": self.region, **counts}

    def dropped(self) -> dict[str, Any]:
        """What was answered 200 but never reached the workspace: messages by reason (a
        missing, unknown or other-region key; an invalid message; past 2,500 in a batch), and
        requests whose key dropped all of them."""
        with self._lock:
            messages = dict(self._counts["messages_dropped_by_reason"])
            requests = dict(self._counts["requests_dropped_by_reason"])
        for reason in KEY_DROP_REASONS:
            messages.setdefault(reason, 0)
            requests.setdefault(reason, 0)
        return {
            "messages": sum(messages.values()),
            "messages_by_reason": messages,
            "requests_by_reason": requests,
        }

    def message_list(self) -> list[dict]:
        """Accepted messages (only `{"messageId"}` stubs when keep_messages is off)."""
        if self.keep_messages:
            with self._lock:
                return list(self.messages)
        return [{"messageId": mid} for mid in self.accepted_message_ids()]

    def arrivals(self) -> dict[str, list]:
        """Accepted messageIds in arrival order, each with the unix time it was accepted."""
        with self._lock:
            ids = list(self._message_ids)
            times = [t for t, count in self._arrivals for _ in range(count)]
        return {"message_ids": ids, "accepted_at": times}

    def request_records(self) -> list[dict]:
        """One summary per `/v1/*` request."""
        with self._lock:
            return list(self.requests)

    def _build_app(self) -> Starlette:
        """The Starlette app: Tracking API routes plus `/_standin/*` inspection routes."""
        routes = [
            Route("/v1/batch", self._batch, methods=["POST"]),
            Route("/v1/import", self._batch, methods=["POST"]),
            Route("/v1/{kind}", self._single, methods=["POST"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            *inspection_routes(self),
        ]
        app = Starlette(routes=routes)
        app.state.standin = self
        return app

    async def _batch(self, request: Request) -> Response:
        """`POST /v1/batch`: a `{"batch": [...]}` body."""
        return await self._ingest(request, None)

    async def _single(self, request: Request) -> Response:
        """`POST /v1/track`, `/v1/identify`, ...: one message, its type given by the path."""
        kind = request.path_params["kind"]
        if kind not in MESSAGE_TYPES:
            return json_response(
                {"success": False, "code": "not_found", "message": "no such route"}, 404
            )
        return await self._ingest(request, kind)

    async def _healthz(self, request: Request) -> Response:
        """Liveness plus a reminder of what this is."""
        body = {"ok": True, "standin": "segment", "region": self.region, "production": False}
        return json_response(body | {"label": STANDIN_LABEL})


def create_segment_app(
    region: str,
    write_keys: Mapping[str, str],
    faults: SegmentFaults | None = None,
    keep_messages: bool = True,
    *,
    strict_auth: bool = False,
) -> Starlette:
    """A stand-in app; its SegmentStandin is at `app.state.standin`."""
    return SegmentStandin(region, write_keys, faults, keep_messages, strict_auth=strict_auth).app


if __name__ == "__main__":
    from segment_sync.standins.segment_cli import main

    raise SystemExit(main())
