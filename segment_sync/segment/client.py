"""Segment Tracking API client: /v1/batch over httpx, gzip, keep-alive, retries with backoff."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from segment_sync import LIBRARY_NAME, __version__
from segment_sync.http import is_retryable, parse_retry_after
from segment_sync.redaction import Redactor

_RESPONSE_BODY_LIMIT = 4096


class Verdict(StrEnum):
    """What a finished request means for the messages it carried."""

    DELIVERED = "delivered"  # 2xx
    REJECTED = "rejected"  # 400/413: Segment refuses these messages; retrying cannot help
    FATAL = "fatal"  # auth, region, retries exhausted: the run fails, messages stay pending


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request to Segment: a row of the outbound log."""

    identifier: str
    attempt: int
    started_at: datetime
    status_code: int | None
    response_time_s: float
    error: str | None
    response_body: str | None
    retry_after_s: float | None = None

    @property
    def retryable(self) -> bool:
        return is_retryable(self.status_code)


@dataclass(slots=True)
class BatchOutcome:
    verdict: Verdict
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]


def _error_text(status: int, body: str) -> str:
    hints = {
        401: "the write key was refused: check outbound.write_key_env and that outbound.region "
        "matches the workspace's region (a key from another region is rejected)",
        403: "the write key is not allowed here: check outbound.region matches the workspace",
        404: "no such endpoint: check outbound.base_url / outbound.region",
        400: "Segment refused the request (bad JSON or over 500 KB)",
        413: "request too large for Segment",
        429: "throttled by Segment",
    }
    hint = hints.get(status, "Segment server error" if status >= 500 else "unexpected status")
    return f"HTTP {status}: {hint}" + (f" ({body[:300]})" if body else "")


class SegmentClient:
    """Sends /v1/batch bodies to one regional endpoint; several requests may be in flight."""

    def __init__(
        self,
        endpoint: str,
        write_key: str,
        *,
        max_retries: int = 6,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        timeout_s: float = 30.0,
        max_in_flight: int = 4,
        gzip: bool = True,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/batch"
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.gzip = gzip
        self.redactor = Redactor([write_key])
        self._http = httpx.AsyncClient(
            auth=httpx.BasicAuth(write_key, ""),
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
            headers={
                "User-Agent": f"{LIBRARY_NAME}/{__version__}",
                "Content-Type": "application/json",
            },
        )
        self._slots = asyncio.Semaphore(max_in_flight)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SegmentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, body: bytes) -> BatchOutcome:
        """Send one batch body, retrying 429/5xx/network errors; never retries other 4xx."""
        async with self._slots:
            payload = await asyncio.to_thread(zlib.compress, body, 1, 31) if self.gzip else body
            outcome = BatchOutcome(Verdict.FATAL)
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=self._wait,
                retry=retry_if_result(lambda a: a.retryable),
                retry_error_callback=lambda state: state.outcome.result(),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    result = await self._post(payload, attempt.retry_state.attempt_number)
                    outcome.attempts.append(result)
                if not attempt.retry_state.outcome.failed:
                    attempt.retry_state.set_result(result)
            outcome.verdict = self._verdict(outcome.last)
            return outcome

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=self.backoff_base_s, max=self.backoff_cap_s)(
            state
        )
        retry_after = state.outcome.result().retry_after_s if state.outcome else None
        return max(backoff, retry_after or 0.0)

    @staticmethod
    def _verdict(last: Attempt) -> Verdict:
        code = last.status_code
        if code is not None and 200 <= code < 300:
            return Verdict.DELIVERED
        if code in (400, 413):
            return Verdict.REJECTED
        return Verdict.FATAL

    async def _post(self, payload: bytes, number: int) -> Attempt:
        identifier = uuid.uuid4().hex
        headers = {"X-Request-Id": identifier}
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            response = await self._http.post(self.url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            error = self.redactor.text(
                f"{type(exc).__name__}: {exc or 'no answer'} (POST {self.url}: check that "
                "outbound.base_url / outbound.region name a reachable Segment endpoint)"
            )
            return Attempt(
                identifier, number, started, None, time.perf_counter() - clock, error, None
            )
        elapsed = time.perf_counter() - clock
        text = self.redactor.text(response.text[:_RESPONSE_BODY_LIMIT]) or ""
        status = response.status_code
        error = None if 200 <= status < 300 else _error_text(status, text)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Attempt(identifier, number, started, status, elapsed, error, text, retry_after)
