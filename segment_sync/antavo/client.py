"""Antavo Events API client: Escher-signed /events and /events/bulk over httpx, paced and retried.

- Events go out in /events/bulk requests of at most 50 (a lone event goes to /events), several
  requests in flight; results come back one per event, in input order.
- A smooth client-side pacer keeps requests a little under `rate_limit_per_minute`, so a client
  configured at or below the stack's limit (1,500/min shared, 20,000/min dedicated) never
  provokes a 429. 429 (honouring Retry-After, which also pauses the pacer), 408, 5xx and network
  errors are retried with capped exponential backoff and full jitter; other 4xx are final.
- 401/403 mean the key, secret or stack is wrong, not the events: the result says `auth_error`,
  and the client sends nothing more (later chunks come back unsent, also `auth_error`), so a bad
  credential costs at most the requests already in flight.
- /events/bulk answers 200 with one result per event (`{"results": [{"error": {...}} |
  {"events": [...]}], "total", "errors"}`), so one bad event fails alone.
- Antavo publishes no idempotency key: a retry after a timeout may register an event twice.
- Records and errors never contain the API key, the secret or the Authorization header.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from segment_sync import LIBRARY_NAME, __version__
from segment_sync.antavo import escher
from segment_sync.http import is_retryable, parse_retry_after
from segment_sync.redaction import Redactor

log = logging.getLogger(__name__)

MAX_BULK_EVENTS = 50
RATE_HEADROOM = 0.98  # pace at 98% of the limit, absorbing network jitter at the server
_RESPONSE_BODY_LIMIT = 65536


@dataclass(frozen=True)
class AntavoRequestRecord:
    """One HTTP attempt against Antavo: a row of the inbound log (secrets redacted)."""

    identifier: str
    started_at: datetime
    path: str
    status_code: int | None
    response_time_s: float
    request_body: str
    response_body: str | None
    error: str | None
    attempt: int
    event_count: int


@dataclass(frozen=True)
class EventResult:
    """What became of one event passed to `send_events`."""

    index: int
    ok: bool
    event_id: str | None
    error: str | None
    retryable: bool
    status_code: int | None
    identifier: str | None
    auth_error: bool = False  # 401/403: the credentials or the stack are wrong, not the event


AUTH_STATUSES = (401, 403)


class _Pacer:
    """Spaces request starts at least one interval apart; a Retry-After pauses everyone.

    A waiter re-reads the clock when it wakes and takes the next slot only then, so a stalled
    event loop never releases a burst: starts stay an interval apart whatever the machine does.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 60.0 / (per_minute * RATE_HEADROOM)
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._paused_until = 0.0

    async def acquire(self) -> None:
        """Wait until a start is allowed now, then take it."""
        while True:
            now = self._clock()
            ready_at = max(self._next, self._paused_until)
            if now < ready_at:
                await self._sleep(ready_at - now)
                continue
            self._next = now + self.interval
            return

    def pause(self, seconds: float) -> None:
        """No new request starts for `seconds`."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)


@dataclass(frozen=True)
class _Item:
    """One serialised event waiting to be sent."""

    index: int
    body: bytes
    action: Any


@dataclass(frozen=True)
class _Outcome:
    """One attempt's verdict on the events it carried."""

    status_code: int | None
    retryable: bool
    retry_after_s: float | None
    error: str | None  # whole-request error; per-event ones are in `events`
    events: list[tuple[bool, str | None, str | None]]  # (ok, event_id, error) per event
    auth: bool = False


class AntavoClient:
    """Sends events to the Antavo Events API; use from one event loop, close with `aclose`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        stack: str,
        rate_limit_per_minute: int = 1500,
        max_retries: int = 5,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
        timeout_s: float = 30.0,
        concurrency: int = 8,
        on_request: Callable[[AntavoRequestRecord], None] | None = None,
    ) -> None:
        escher.check_credentials(api_key, api_secret, stack)
        if rate_limit_per_minute <= 0 or concurrency <= 0 or max_retries < 0:
            raise ValueError("rate_limit_per_minute and concurrency must be > 0, max_retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.stack = stack
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.on_request = on_request
        self._api_key = api_key
        self._api_secret = api_secret
        self._redactor = Redactor([api_key, api_secret])
        self._pacer = _Pacer(rate_limit_per_minute)
        self._slots = asyncio.Semaphore(concurrency)
        self.auth_failure: str | None = None  # set by the first 401/403; nothing is sent after
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def __repr__(self) -> str:
        """Target only: never the credentials."""
        return f"AntavoClient(base_url={self.base_url!r}, stack={self.stack!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AntavoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send_events(self, events: list[dict]) -> list[EventResult]:
        """Send events in bulk chunks of <= 50; one EventResult per event, in input order."""
        results: list[EventResult | None] = [None] * len(events)
        ready: list[_Item] = []
        for index, event in enumerate(events):
            action = event.get("action") if isinstance(event, dict) else None
            try:
                ready.append(_Item(index, orjson.dumps(event), action))
            except (orjson.JSONEncodeError, TypeError) as exc:
                error = self._redactor.text(f"event is not JSON-serialisable: {exc}")
                results[index] = EventResult(index, False, None, error, False, None, None)
        chunks = [ready[i : i + MAX_BULK_EVENTS] for i in range(0, len(ready), MAX_BULK_EVENTS)]
        for chunk_results in await asyncio.gather(*(self._send_chunk(c) for c in chunks)):
            for result in chunk_results:
                results[result.index] = result
        return [r for r in results if r is not None]

    async def _send_chunk(self, chunk: list[_Item]) -> list[EventResult]:
        """POST one chunk, retrying what may be retried; results for its events."""
        if len(chunk) == 1:
            path, body = "/events", chunk[0].body
        else:
            path, body = "/events/bulk", b'{"events":[' + b",".join(i.body for i in chunk) + b"]}"
        actions = [item.action for item in chunk]
        async with self._slots:
            if self.auth_failure is not None:
                return self._unsent(chunk, self.auth_failure)
            attempt = 0
            while True:
                attempt += 1
                identifier, outcome = await self._attempt(path, body, attempt, actions)
                if outcome.auth:
                    self.auth_failure = outcome.error
                if not outcome.retryable or attempt > self.max_retries:
                    break
                backoff = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
                delay = random.uniform(0, backoff)
                if outcome.retry_after_s is not None:
                    self._pacer.pause(outcome.retry_after_s)
                    delay = max(delay, outcome.retry_after_s)
                await asyncio.sleep(delay)
        return [
            EventResult(
                index=item.index,
                ok=ok,
                event_id=event_id,
                error=error,
                retryable=outcome.retryable and not ok,
                status_code=outcome.status_code,
                identifier=identifier,
                auth_error=outcome.auth,
            )
            for item, (ok, event_id, error) in zip(chunk, outcome.events, strict=True)
        ]

    @staticmethod
    def _unsent(chunk: list[_Item], reason: str) -> list[EventResult]:
        """Results for a chunk not sent because Antavo already refused the credentials."""
        error = f"not sent: {reason}"
        return [EventResult(i.index, False, None, error, False, None, None, True) for i in chunk]

    async def _attempt(
        self, path: str, body: bytes, attempt: int, actions: list[Any]
    ) -> tuple[str, _Outcome]:
        """One paced, signed HTTP request, recorded through `on_request`."""
        await self._pacer.acquire()
        identifier = uuid.uuid4().hex
        url = self.base_url + path
        headers = {
            **escher.sign_request(self._api_key, self._api_secret, self.stack, "POST", url, body),
            "Content-Type": "application/json",
            "User-Agent": f"{LIBRARY_NAME}/{__version__}",
            "X-Request-Id": identifier,
        }
        started = datetime.now(UTC)
        clock = time.perf_counter()
        response_text: str | None = None
        count = len(actions)
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = (
                f"{type(exc).__name__}: {exc or 'no answer'} (POST {url}: check that "
                "inbound.base_url / inbound.stack name a reachable Antavo API)"
            )
            outcome = _Outcome(None, True, None, error, [(False, None, error)] * count)
        else:
            response_text = response.text[:_RESPONSE_BODY_LIMIT]
            outcome = _interpret(response, path, actions)
        elapsed = time.perf_counter() - clock
        redact = self._redactor.text
        outcome = _Outcome(
            outcome.status_code,
            outcome.retryable,
            outcome.retry_after_s,
            redact(outcome.error),
            [(ok, eid, redact(err)) for ok, eid, err in outcome.events],
            outcome.auth,
        )
        self._record(
            AntavoRequestRecord(
                identifier=identifier,
                started_at=started,
                path=path,
                status_code=outcome.status_code,
                response_time_s=elapsed,
                request_body=redact(body.decode("utf-8")) or "",
                response_body=redact(response_text),
                error=outcome.error,
                attempt=attempt,
                event_count=count,
            )
        )
        return identifier, outcome

    def _record(self, record: AntavoRequestRecord) -> None:
        """Hand a record to `on_request`; a failing callback is logged, never fatal."""
        if self.on_request is None:
            return
        try:
            self.on_request(record)
        except Exception:
            log.exception("on_request callback failed for Antavo request %s", record.identifier)


def _interpret(response: httpx.Response, path: str, actions: list[Any]) -> _Outcome:
    """What an HTTP response means for each event it answered (`actions` as sent)."""
    status, count = response.status_code, len(actions)
    payload = _json_or_none(response.content)
    if not 200 <= status < 300:
        retryable = is_retryable(status)
        error = f"HTTP {status}: {_antavo_error(payload) or _reason(response)}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        events = [(False, None, error)] * count
        return _Outcome(status, retryable, retry_after, error, events, status in AUTH_STATUSES)
    if path == "/events":
        return _Outcome(status, False, None, None, [(True, _event_id(payload, actions[0]), None)])
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != count:
        got = len(results) if isinstance(results, list) else "no"
        error = f"HTTP {status}: bulk response has {got} results for {count} events"
        return _Outcome(status, False, None, error, [(False, None, error)] * count)
    events: list[tuple[bool, str | None, str | None]] = []
    for result, action in zip(results, actions, strict=True):
        message = _antavo_error(result) if isinstance(result, dict) else "malformed result"
        if message:
            events.append((False, None, message))
        else:
            events.append((True, _event_id(result, action), None))
    return _Outcome(status, False, None, None, events)


def _json_or_none(raw: bytes) -> Any:
    """Parsed JSON, or None if the bytes are not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _antavo_error(payload: Any) -> str | None:
    """`message (type code)` from Antavo's `{"error": {type, code, message}}`, else None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None
    error = payload["error"]
    detail = " ".join(str(error[k]) for k in ("type", "code") if error.get(k) not in (None, ""))
    message = str(error.get("message") or "error")
    return f"{message} ({detail})" if detail else message


def _reason(response: httpx.Response) -> str:
    """A short description of a non-Antavo-shaped error response."""
    text = response.text.strip()
    return text[:300] if text else response.reason_phrase or "error"


def _event_id(payload: Any, action: Any) -> str | None:
    """The registered event's ID from an `events` list (the one with the sent action, else first)."""
    events = payload.get("events") if isinstance(payload, dict) else None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        return None
    ids = [e for e in events if isinstance(e, dict) and e.get("id")]
    for event in ids:
        if event.get("action") == action:
            return str(event["id"])
    return str(ids[0]["id"]) if ids else None
