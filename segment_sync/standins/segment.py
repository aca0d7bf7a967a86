"""LOCAL STAND-IN for one regional Segment HTTP Tracking API endpoint: tests and demo only.

This is not Segment and never a production target. It speaks the documented contract of
`POST /v1/batch` (and the single-message routes) closely enough for the real client to be
tested over loopback HTTP:

- auth: write key as the HTTP Basic username (empty password) or `writeKey` in the JSON body;
  missing or unknown key -> 401; a key of the other region -> 401 (Segment's docs only say
  such requests "get rejected", the status code is the stand-in's choice);
- limits: 500,000 bytes per request (the JSON after gzip decompression; see
  `segment_wire.MAX_REQUEST_BYTES` for that reading of "500 KB") and 32 KB per message -> 400
  for the whole request; more than 2,500 messages in a batch -> 200, the surplus silently dropped;
- bad JSON or a missing `batch` list -> 400; invalid messages (no userId/anonymousId, no
  messageId, a track without `event`) -> still 200, the message dropped;
- injectable faults (5xx, 429 with Retry-After, outages, 400 rejections, delay, and a 400 for
  any request carrying a marked message, which real Segment does not do: see `segment_faults`),
  random ones drawn from a seeded RNG.

Write keys never appear in a response, a log line, a request record or a stored message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.labels import SEGMENT_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.segment_faults import REFUSED_CODE, REFUSED_TEXT, SegmentFaults
from segment_sync.standins.segment_wire import (
    MAX_BATCH_MESSAGES,
    MESSAGE_TYPES,
    Rejection,
    basic_auth_user,
    batch_messages,
    body_write_key,
    check_message_sizes,
    check_region,
    decode_body,
    json_response,
    parse_json,
    single_messages,
    sort_messages,
)
from segment_sync.standins.server import seconds_text

log = logging.getLogger(__name__)

FAULT_STATUSES = (500, 502, 503)


class SegmentStandin:
    """LOCAL STAND-IN for one regional Segment Tracking API endpoint; keeps what it accepted."""

    def __init__(
        self,
        region: str,
        write_keys: Mapping[str, str],
        faults: SegmentFaults | None = None,
        keep_messages: bool = True,
    ) -> None:
        check_region(region, "region")
        for key_region in write_keys.values():
            check_region(key_region, "write key region")
        self.region = region
        self._write_keys = dict(write_keys)
        self.faults = faults or SegmentFaults()
        self.keep_messages = keep_messages
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.messages: list[dict] = []
        self.requests: list[dict] = []
        self._message_ids: list[str] = []
        self._arrivals: list[tuple[float, int]] = []  # (unix time, messages) per accepted request
        self._seen_ids: set[str] = set()
        self._counts = _empty_counts()
        self.app = self._build_app()

    def __repr__(self) -> str:
        """Region and key count only: never the keys."""
        return f"SegmentStandin(region={self.region!r}, write_keys={len(self._write_keys)})"

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
            self._counts = _empty_counts()

    def set_faults(self, **changes: Any) -> None:
        """Update fault fields; a new `seed` re-seeds the fault RNG."""
        self.faults.update(changes)
        if "seed" in changes:
            self._rng = random.Random(self.faults.seed)

    def stats(self) -> dict[str, Any]:
        """JSON-ready counters: requests by status, messages accepted/dropped, bytes."""
        with self._lock:
            counts = dict(self._counts)
            counts["requests_by_status"] = {
                str(k): v for k, v in sorted(self._counts["requests_by_status"].items())
            }
        return {"standin": "segment", "region": self.region, **counts}

    def _build_app(self) -> Starlette:
        """The Starlette app: Tracking API routes plus `/_standin/*` inspection routes."""
        routes = [
            Route("/v1/batch", self._batch, methods=["POST"]),
            Route("/v1/import", self._batch, methods=["POST"]),
            Route("/v1/{kind}", self._single, methods=["POST"]),
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/_standin/messages", self._get_messages, methods=["GET"]),
            Route("/_standin/message_ids", self._get_message_ids, methods=["GET"]),
            Route("/_standin/arrivals", self._get_arrivals, methods=["GET"]),
            Route("/_standin/requests", self._get_requests, methods=["GET"]),
            Route("/_standin/stats", self._get_stats, methods=["GET"]),
            Route("/_standin/reset", self._post_reset, methods=["POST"]),
            Route("/_standin/faults", self._faults_route, methods=["GET", "POST"]),
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

    async def _ingest(self, request: Request, kind: str | None) -> Response:
        """Faults, auth, limits, validation, storage; one request record either way."""
        raw = await request.body()
        record = _new_record(request, len(raw))
        try:
            await self._apply_faults()
            header_key = basic_auth_user(request.headers.get("authorization"))
            if header_key:
                record["write_key_region"] = self._key_region(header_key)
            body = decode_body(raw, request.headers.get("content-encoding"))
            record["json_bytes"] = len(body)
            payload = parse_json(body)
            if not header_key:
                record["write_key_region"] = self._key_region(body_write_key(payload))
            messages = single_messages(payload, kind) if kind else batch_messages(payload)
            self._accept(messages, len(body), record)
        except Rejection as exc:
            return self._reject(exc, record)
        self._finish(record, 200, None)
        return json_response({"success": True}, 200)

    async def _apply_faults(self) -> None:
        """Sleep `delay_s`, then raise the injected fault for this request, if any."""
        faults = self.faults
        if faults.delay_s > 0:
            await asyncio.sleep(faults.delay_s)
        if faults.outage_requests > 0:
            faults.outage_requests -= 1
            raise Rejection(503, "service_unavailable", "stand-in outage (outage_requests)")
        if faults.reject_requests > 0:
            faults.reject_requests -= 1
            raise Rejection(400, "bad_request", "stand-in rejected the batch (reject_requests)")
        if faults.outage_until and time.time() < faults.outage_until:
            raise Rejection(503, "service_unavailable", "stand-in outage (outage_until)")
        if faults.error_rate <= 0 and faults.throttle_rate <= 0:
            return
        draw = self._rng.random()
        if draw < faults.error_rate:
            status = self._rng.choice(FAULT_STATUSES)
            raise Rejection(status, "server_error", "stand-in injected server error")
        if draw < faults.error_rate + faults.throttle_rate:
            retry_after = {"Retry-After": seconds_text(faults.retry_after_s)}
            raise Rejection(429, "rate_limited", "too many requests", headers=retry_after)

    def _key_region(self, key: str | None) -> str:
        """The region of an accepted write key; 401 for missing, unknown or other-region keys."""
        if not key:
            raise Rejection(
                401,
                "unauthorized",
                "missing write key: send it as the HTTP Basic username or as writeKey in the body",
            )
        region = self._write_keys.get(key)
        if region is None:
            raise Rejection(401, "unauthorized", "unknown write key")
        if region != self.region:
            message = (
                f"write key belongs to another region ({region}); "
                f"this is the {self.region} endpoint"
            )
            raise Rejection(401, "wrong_region", message, region=region)
        return region

    def _accept(self, messages: list, body_len: int, record: dict[str, Any]) -> None:
        """Check sizes, keep the valid messages, count the dropped ones."""
        kept = messages[:MAX_BATCH_MESSAGES]
        check_message_sizes(kept, body_len)
        if self.faults.refused_index(kept) is not None:
            raise Rejection(400, REFUSED_CODE, REFUSED_TEXT)
        accepted, reasons = sort_messages(kept)
        over_limit = len(messages) - len(kept)
        invalid = len(kept) - len(accepted)
        record.update(
            messages=len(messages),
            accepted=len(accepted),
            dropped=over_limit + invalid,
            dropped_over_limit=over_limit,
            dropped_invalid=invalid,
            drop_reasons=reasons,
        )
        self._store(accepted)

    def _store(self, accepted: list[dict]) -> None:
        """Keep accepted messages (or just their ids) and count duplicate messageIds."""
        ids = [message["messageId"] for message in accepted]
        with self._lock:
            before = len(self._seen_ids)
            self._seen_ids.update(ids)
            self._counts["duplicate_message_ids"] += len(ids) - (len(self._seen_ids) - before)
            self._message_ids.extend(ids)
            self._arrivals.append((time.time(), len(ids)))
            if self.keep_messages:
                self.messages.extend(accepted)

    def _reject(self, exc: Rejection, record: dict[str, Any]) -> Response:
        """Record and answer an error; the message never contains a key."""
        if exc.region is not None:
            record["write_key_region"] = exc.region
        self._finish(record, exc.status, exc.message)
        if exc.status in (400, 401):
            log.info("segment stand-in answered %s: %s", exc.status, exc.message)
        body = {"success": False, "code": exc.code, "message": exc.message}
        return json_response(body, exc.status, exc.headers)

    def _finish(self, record: dict[str, Any], status: int, error: str | None) -> None:
        """Append the request record and add it to the counters."""
        record["status"], record["error"] = status, error
        with self._lock:
            self.requests.append(record)
            counts = self._counts
            counts["requests"] += 1
            by_status = counts["requests_by_status"]
            by_status[status] = by_status.get(status, 0) + 1
            counts["messages_received"] += record["messages"]
            counts["messages_accepted"] += record["accepted"]
            counts["messages_dropped"] += record["dropped"]
            counts["bytes_received"] += record["bytes"]

    async def _healthz(self, request: Request) -> Response:
        """Liveness plus a reminder of what this is."""
        body = {"ok": True, "standin": "segment", "region": self.region, "production": False}
        return json_response(body | {"label": STANDIN_LABEL})

    async def _get_messages(self, request: Request) -> Response:
        """Accepted messages (only `{"messageId"}` stubs when keep_messages is off)."""
        if self.keep_messages:
            with self._lock:
                return json_response(list(self.messages))
        return json_response([{"messageId": mid} for mid in self.accepted_message_ids()])

    async def _get_message_ids(self, request: Request) -> Response:
        """Accepted messageIds in arrival order."""
        return json_response(self.accepted_message_ids())

    async def _get_arrivals(self, request: Request) -> Response:
        """Accepted messageIds in arrival order, each with the unix time it was accepted."""
        with self._lock:
            ids = list(self._message_ids)
            times = [t for t, count in self._arrivals for _ in range(count)]
        return json_response({"message_ids": ids, "accepted_at": times})

    async def _get_requests(self, request: Request) -> Response:
        """One summary per `/v1/*` request."""
        with self._lock:
            return json_response(list(self.requests))

    async def _get_stats(self, request: Request) -> Response:
        """Counters."""
        return json_response(self.stats())

    async def _post_reset(self, request: Request) -> Response:
        """Forget everything recorded so far."""
        self.reset()
        return json_response({"ok": True})

    async def _faults_route(self, request: Request) -> Response:
        """GET the current faults, or POST a JSON object of fields to change."""
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body())
                if not isinstance(changes, dict):
                    raise ValueError("faults body must be a JSON object")
                self.set_faults(**changes)
            except (ValueError, TypeError) as exc:
                return json_response({"ok": False, "message": str(exc)}, 400)
        return json_response(asdict(self.faults))


def _empty_counts() -> dict[str, Any]:
    """Fresh counters."""
    return {
        "requests": 0,
        "requests_by_status": {},
        "messages_received": 0,
        "messages_accepted": 0,
        "messages_dropped": 0,
        "duplicate_message_ids": 0,
        "bytes_received": 0,
    }


def _new_record(request: Request, raw_len: int) -> dict[str, Any]:
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
        "bytes": raw_len,
        "json_bytes": None,
        "gzip": request.headers.get("content-encoding", "").lower() == "gzip",
        "retry_count": int(retry) if retry and retry.isdigit() else None,
        "write_key_region": None,
        "error": None,
    }


def create_segment_app(
    region: str,
    write_keys: Mapping[str, str],
    faults: SegmentFaults | None = None,
    keep_messages: bool = True,
) -> Starlette:
    """A stand-in app; its SegmentStandin is at `app.state.standin`."""
    return SegmentStandin(region, write_keys, faults, keep_messages).app


if __name__ == "__main__":
    from segment_sync.standins.segment_cli import main

    raise SystemExit(main())
