"""Antavo Events API client: Escher-signed /events and /events/bulk over httpx, paced and retried.

- Events go out in /events/bulk requests of at most 50 (a lone event goes to /events), several
  requests in flight; results come back one per event, in input order.
- A smooth client-side pacer keeps requests a little under `rate_limit_per_minute`, so a client
  configured at or below the stack's limit (1,500/min shared, 20,000/min dedicated) never
  provokes a 429; a shared pacer (shared_pacer.py) keeps it so across processes. 429 (honouring
  Retry-After, which also pauses the pacer), 408, 503 and network errors before the request was
  written (connect error or timeout) are retried with capped exponential backoff and full
  jitter; other 4xx are final. Any other 5xx may come after Antavo registered the events: they
  are `unknown`, never retried, and the fault stops the ingest (faults.py).
- A request sent but not answered (read timeout, connection closed mid-answer) leaves its
  events `unknown`, never retried: Antavo may have registered them.
- 401/403 mean the key, secret or stack is wrong, not the events: the result says `auth_error`,
  and the client sends nothing more (later chunks come back unsent, also `auth_error`), so a bad
  credential costs at most the requests already in flight.
- Antavo's answers are read by answers.py: one result per event, so one bad event fails alone;
  a 2xx answer that does not account for every event (or was not read whole) leaves their
  outcome `unknown`, neither failed nor retried. Results and request records: records.py.
- A bulk request refused as a whole for its content (413, 400, 422: nothing registered) is
  narrowed by resending its halves, so one event Antavo refuses (too large) fails alone.
- A whole-request failure that is not about the events (503/408/429 after the retries, a network
  error before sending, a 3xx, a 404/405 that is not Antavo's answer) carries a `fault`
  (faults.py); so do the unknown events of another 5xx or of a 2xx that is not a JSON object.
- Antavo publishes no idempotency key: nothing that may have reached it is sent again.
- Records and errors never contain the API key, the secret or the Authorization header.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace

import orjson

from segment_sync.antavo import escher
from segment_sync.antavo.answers import AUTH_STATUSES as AUTH_STATUSES  # re-exported
from segment_sync.antavo.answers import _interpret, _Outcome, _Verdict, unanswered, unknown_outcome
from segment_sync.antavo.event_status import event_status_code
from segment_sync.antavo.faults import UNANSWERED, UNREACHABLE, UNREADABLE
from segment_sync.antavo.pacer import Pacer, RateLimiter
from segment_sync.antavo.records import (
    MAX_BULK_EVENTS,
    AntavoRequestRecord,
    EventResult,
    request_for,
)
from segment_sync.antavo.request_record import ReadyEvent, request_record
from segment_sync.http import ApiClient, RetryPolicy
from segment_sync.redaction import SecretUrl, reveal, without_userinfo

log = logging.getLogger(__name__)

_RESPONSE_BODY_LIMIT = 65536
DEFAULT_RETRY = RetryPolicy(max_retries=5, backoff_base_s=0.2, backoff_cap_s=10.0)
# A whole /events/bulk request refused for its content, before any event was registered (each
# event's own errors come in a 200's results): its halves are resent to find the event at fault.
SPLIT_STATUSES = frozenset({400, 413, 422})
MAX_SPLIT_REQUESTS = 24  # a chunk of 50 narrowed to two refused events (12 requests each)
_UNREACHABLE_FIX = "inbound.base_url / inbound.stack name a reachable Antavo API"


_OnRequest = Callable[[AntavoRequestRecord], None] | None


def _index(result: EventResult) -> int:
    return result.index


class AntavoClient(ApiClient):
    """Sends events to the Antavo Events API; use from one event loop, close with `aclose`."""

    def __init__(
        self,
        base_url: str | SecretUrl,
        api_key: str,
        api_secret: str,
        *,
        stack: str,
        rate_limit_per_minute: int = 1500,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = 30.0,
        concurrency: int = 8,
        on_request: Callable[[AntavoRequestRecord], None] | None = None,
        pacer: RateLimiter | None = None,
    ) -> None:
        """`pacer`: the rate limiter to take starts from (a SharedPacer spans processes); the
        default is this client's own `Pacer(rate_limit_per_minute)`. The client closes it."""
        escher.check_credentials(api_key, api_secret, stack)
        if rate_limit_per_minute <= 0 or concurrency <= 0:
            raise ValueError("rate_limit_per_minute and concurrency must be > 0")
        super().__init__(
            secrets=[api_key, api_secret],
            timeout_s=timeout_s,
            max_connections=concurrency,
            lean=True,
        )
        self.base_url = SecretUrl(reveal(base_url).rstrip("/"))  # shown masked
        # Antavo authenticates by Escher signing: a user:password in the URL is not sent (httpx
        # would send it as Basic auth, replacing the signature; the Host header would carry it).
        self._target = without_userinfo(self.base_url.reveal())
        self.stack = stack
        self.timeout_s = timeout_s
        self.retry = retry
        self.on_request = on_request
        self._signer = escher.Signer(api_key, api_secret, stack)
        self._pacer: RateLimiter = pacer or Pacer(rate_limit_per_minute)
        self._slots = asyncio.Semaphore(concurrency)
        self.auth_failure: str | None = None  # set by the first 401/403; nothing is sent after

    def __repr__(self) -> str:
        """Target only: never the credentials."""
        return f"AntavoClient(base_url={str(self.base_url)!r}, stack={self.stack!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections and the pacer's."""
        try:
            await super().aclose()
        finally:
            await self._pacer.aclose()

    async def send_events(
        self,
        events: list[dict],
        on_request: Callable[[AntavoRequestRecord], None] | None = None,
    ) -> list[EventResult]:
        """Send events in bulk chunks of <= 50; one EventResult per event, in input order.

        `on_request` receives this call's request records instead of the client's callback.
        """
        record = on_request or self.on_request
        unsendable: list[EventResult] = []
        ready: list[ReadyEvent] = []
        for index, event in enumerate(events):
            try:
                body = orjson.dumps(event)
            except (orjson.JSONEncodeError, TypeError) as exc:
                error = self.redactor.text(f"event is not JSON-serialisable: {exc}")
                unsendable.append(EventResult(index, False, None, error, False, None, None))
                continue
            if isinstance(event, dict):
                ready.append(ReadyEvent(index, body, event.get("customer"), event.get("action")))
            else:
                ready.append(ReadyEvent(index, body, None, None))
        chunks = [ready[i : i + MAX_BULK_EVENTS] for i in range(0, len(ready), MAX_BULK_EVENTS)]
        if len(chunks) == 1:  # the ingest's call: no task for gather to wrap it in
            sent = [await self._send_chunk(chunks[0], record)]
        else:
            sent = await asyncio.gather(*(self._send_chunk(c, record) for c in chunks))
        # Each chunk's results come in its order, and the chunks in input order.
        if not unsendable:
            return sent[0] if len(sent) == 1 else [r for part in sent for r in part]
        return sorted([*unsendable, *(r for part in sent for r in part)], key=_index)

    async def _send_chunk(self, chunk: list[ReadyEvent], record: _OnRequest) -> list[EventResult]:
        """POST one chunk; a bulk request refused as a whole (413, 400, 422: nothing registered)
        is narrowed by resending its halves, so an event Antavo refuses fails alone. At most
        MAX_SPLIT_REQUESTS more requests a chunk; parts still refused then fail together."""
        first, whole_refused = await self._send_once(chunk, record)
        if not whole_refused:
            return first
        results = {result.index: result for result in first}
        refused, budget = [chunk], MAX_SPLIT_REQUESTS
        while refused:
            halves: list[list[ReadyEvent]] = []
            for part in refused:
                if budget >= 2:
                    budget -= 2
                    middle = len(part) // 2
                    halves += [part[:middle], part[middle:]]
            if not halves:
                break
            refused, fault = [], None
            for part, (part_results, part_refused) in zip(
                halves,
                await asyncio.gather(*(self._send_once(h, record) for h in halves)),
                strict=True,
            ):
                results.update((result.index, result) for result in part_results)
                if part_refused:
                    refused.append(part)
                fault = fault or next((r.fault for r in part_results if r.fault), None)
            if fault is not None:  # Antavo failed a part: nothing more is sent, the rest waits
                for item in (item for part in refused for item in part):
                    results[item.index] = replace(results[item.index], fault=fault)
                break
        return [results[item.index] for item in chunk]

    async def _send_once(
        self, chunk: list[ReadyEvent], record: _OnRequest
    ) -> tuple[list[EventResult], bool]:
        """POST one chunk, retrying what may be retried: results for its events, and whether
        it was a bulk request refused as a whole before anything was registered."""
        path, body = request_for([i.body for i in chunk])
        async with self._slots:
            if self.auth_failure is not None:
                return self._unsent(chunk, self.auth_failure), False

            async def attempt(number: int) -> _Outcome:
                outcome = await self._attempt(path, body, number, chunk, record)
                if outcome.auth:
                    self.auth_failure = outcome.error
                return outcome

            outcome = await self.retry.call(
                attempt,
                retryable=lambda o: o.retryable,
                retry_after=lambda o: o.retry_after_s,
                on_retry_after=self._pacer.pause,
            )
        status = outcome.status_code
        refused = path == "/events/bulk" and status in SPLIT_STATUSES
        fault, retryable, identifier, auth = (
            outcome.fault,
            outcome.retryable,
            outcome.identifier,
            outcome.auth,
        )
        # Positional, and a registered event's status is the request's (event_status_code):
        # this runs once per event.
        return [
            EventResult(
                item.index,
                verdict.ok,
                verdict.event_id,
                verdict.error,
                False,
                status,
                identifier,
                auth,
                verdict.unknown,
                None,
            )
            if verdict.ok
            else EventResult(
                item.index,
                False,
                verdict.event_id,
                verdict.error,
                retryable,
                event_status_code(status, False, verdict.answer),
                identifier,
                auth,
                verdict.unknown,
                fault,
            )
            for item, verdict in zip(chunk, outcome.events, strict=True)
        ], refused

    @staticmethod
    def _unsent(chunk: list[ReadyEvent], reason: str) -> list[EventResult]:
        """Results for a chunk not sent because Antavo already refused the credentials."""
        error = f"not sent: {reason}"
        return [EventResult(i.index, False, None, error, False, None, None, True) for i in chunk]

    async def _attempt(
        self, path: str, body: bytes, number: int, chunk: list[ReadyEvent], record: _OnRequest
    ) -> _Outcome:
        """One paced, signed HTTP request, recorded through `on_request`."""
        await self._pacer.acquire()
        identifier = uuid.uuid4().hex
        url = self._target + path
        headers = {
            **self._signer.headers("POST", url, body),
            "Content-Type": "application/json",
            "X-Request-Id": identifier,
        }
        post = await self.timed_post(url, body, headers, fix=_UNREACHABLE_FIX)
        redact = self.redactor.text
        response_text: str | None = None
        if post.response is None and post.surely_unsent:  # nothing reached Antavo: resend
            verdicts = [_Verdict(False, None, post.error)] * len(chunk)
            # The same test as the retry's (http.UNSENT_ERRORS), so the two cannot disagree.
            outcome = _Outcome(
                identifier, None, True, None, post.error, verdicts, fault=UNREACHABLE
            )
        elif post.response is None:  # sent, unanswered: a resend could register it twice
            error = redact(unanswered(post.cause, post.error_type, self.timeout_s, self.deadline_s))
            verdicts = [_Verdict(False, None, error, None, unknown=True)] * len(chunk)
            outcome = _Outcome(identifier, None, False, None, error, verdicts, fault=UNANSWERED)
        elif post.cut_short and post.response.is_success:
            # Antavo answered 2xx, but what it said of each event was not read: it may have
            # registered them, so they are unknown, never failed and resent.
            response_text = redact(post.response.text[:_RESPONSE_BODY_LIMIT])
            error = redact(unknown_outcome(f"answer was not read whole [{post.error}]"))
            verdicts = [_Verdict(False, None, error, None, unknown=True)] * len(chunk)
            status = post.response.status_code
            outcome = _Outcome(identifier, status, False, None, error, verdicts, fault=UNREADABLE)
        else:
            response_text = redact(post.response.text[:_RESPONSE_BODY_LIMIT])
            outcome = _interpret(identifier, post.response, path, [i.action for i in chunk])
            verdicts = [
                v
                if v.error is None
                else _Verdict(v.ok, v.event_id, redact(v.error), v.answer, v.unknown)
                for v in outcome.events
            ]
            outcome = _Outcome(
                identifier,
                outcome.status_code,
                outcome.retryable,
                outcome.retry_after_s,
                redact(outcome.error),
                verdicts,
                outcome.auth,
                outcome.fault,
            )
        self._record(
            record,
            request_record(
                self.redactor,
                identifier=identifier,
                path=path,
                attempt=number,
                chunk=chunk,
                body=body,
                post=post,
                outcome=outcome,
                response_text=response_text,
            ),
        )
        return outcome

    @staticmethod
    def _record(on_request: _OnRequest, record: AntavoRequestRecord) -> None:
        """Hand a record to `on_request`; a failing callback is logged, never fatal."""
        if on_request is None:
            return
        try:
            on_request(record)
        except Exception:
            log.exception("on_request callback failed for Antavo request %s", record.identifier)
