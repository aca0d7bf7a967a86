"""How the Segment stand-in takes a `/v1/*` request: injected faults, write key, body and size
checks, the messages kept or dropped, and one request record either way (see
`segment_sync.standins.segment` for the behaviour)."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from segment_sync.standins.segment_faults import REFUSED_CODE, REFUSED_TEXT, SegmentFaults
from segment_sync.standins.segment_inspect import add_to_counts, new_record
from segment_sync.standins.segment_keys import KeyVerdict, WriteKeys
from segment_sync.standins.segment_wire import (
    MAX_BATCH_MESSAGES,
    Rejection,
    batch_messages,
    body_write_key,
    check_message_sizes,
    decode_body,
    json_response,
    parse_json,
    single_messages,
    sort_messages,
)
from segment_sync.standins.server import seconds_text

log = logging.getLogger(__name__)

FAULT_STATUSES = (500, 502, 503)


class SegmentIngest:
    """The request path of `SegmentStandin`: faults, checks, storage, the request record."""

    # Set by SegmentStandin.__init__ and set_faults().
    faults: SegmentFaults
    keep_messages: bool
    _write_keys: WriteKeys
    _rng: random.Random
    _lock: threading.Lock
    messages: list[dict]
    requests: list[dict]
    _message_ids: list[str]
    _arrivals: list[tuple[float, int]]
    _seen_ids: set[str]
    _counts: dict[str, Any]

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
