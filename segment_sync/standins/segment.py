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

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.labels import SEGMENT_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.segment_faults import REFUSED_CODE, REFUSED_TEXT, SegmentFaults
from segment_sync.standins.segment_inspect import (
    add_to_counts,
    empty_counts,
    inspection_routes,
    new_record,
)
from segment_sync.standins.segment_keys import KEY_DROP_REASONS, KeyVerdict, WriteKeys
from segment_sync.standins.segment_wire import (
    MAX_BATCH_MESSAGES,
    MESSAGE_TYPES,
    Rejection,
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

    async def _ingest(self, request: Request, kind: str | None) -> Response:
        """Faults, auth, limits, validation, storage; one request record either way."""
        raw = await request.body()
        record = new_record(request, len(raw))
        try:
            await self._apply_faults()
            header_key = self._write_keys.header_key(request.headers.get("authorization"))
            verdict = self._write_keys.verdict(header_key) if header_key else None
            body = decode_body(raw, request.headers.get("content-encoding"))
            record["json_bytes"] = len(body)
            payload = parse_json(body)
            if verdict is None:
                verdict = self._write_keys.verdict(body_write_key(payload))
            record["write_key_region"] = verdict.region
            messages = single_messages(payload, kind) if kind else batch_messages(payload)
            self._accept(messages, len(body), record, verdict)
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

    def _accept(
        self, messages: list, body_len: int, record: dict[str, Any], verdict: KeyVerdict
    ) -> None:
        """Check sizes, keep the valid messages of an accepted key, count the dropped ones."""
        kept = messages[:MAX_BATCH_MESSAGES]
        check_message_sizes(kept, body_len)
        if self.faults.refused_index(kept) is not None:
            raise Rejection(400, REFUSED_CODE, REFUSED_TEXT)
        if verdict.drop_reason is not None:  # answered 200 all the same, as Segment does
            accepted, reasons = [], {verdict.drop_reason: len(kept)}
        else:
            accepted, reasons = sort_messages(kept)
        over_limit = len(messages) - len(kept)
        if over_limit:
            reasons["over_batch_limit"] = over_limit
        record.update(
            messages=len(messages),
            accepted=len(accepted),
            dropped=len(messages) - len(accepted),
            dropped_over_limit=over_limit,
            dropped_invalid=len(kept) - len(accepted) if verdict.drop_reason is None else 0,
            drop_reasons=reasons,
            dropped_reason=verdict.drop_reason,
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
            add_to_counts(self._counts, record)

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
