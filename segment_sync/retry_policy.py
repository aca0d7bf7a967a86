"""The one HTTP retry policy both API clients share: what is retryable, how long to wait."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

MAX_RETRY_AFTER_S = 300.0
# 408 and 429 ask the client to come back; 5xx is the server's fault; None is a network error.
RETRYABLE_STATUSES = frozenset({408, 429})

R = TypeVar("R")


def is_retryable(status: int | None) -> bool:
    """True for a network error (no status), 408, 429 or any 5xx."""
    return status is None or status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped at 5 minutes;
    None when absent or unusable (not a number or date, not finite)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):  # "nan", "inf", "1e999": no usable wait
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to `max_retries` more attempts, capped exponential backoff with full jitter.

    A Retry-After the server sent is a floor on the wait, never shortened by the jitter.
    """

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            raise ValueError("max_retries, backoff_base_s and backoff_cap_s must be >= 0")

    async def call(
        self,
        attempt: Callable[[int], Awaitable[R]],
        *,
        retryable: Callable[[R], bool],
        retry_after: Callable[[R], float | None],
        on_retry_after: Callable[[float], None] | None = None,
    ) -> R:
        """Await `attempt(n)` (n from 1) until its result is final or retries run out; the last.

        An exception from `attempt` is never retried: it propagates at once. A plain loop, not
        tenacity: its retry state and our result formed a reference cycle per request, which
        held the parsed answer until the garbage collector (about 8 µs of CPU an event).
        """
        number = 1
        while True:
            result = await attempt(number)
            if not retryable(result):
                return result
            asked = retry_after(result)
            # Told also after the last attempt: the server asked every request to wait (the
            # pacer pauses the others), as tenacity did (its wait ran before its stop check).
            if asked is not None and on_retry_after is not None:
                on_retry_after(asked)
            if number > self.max_retries:
                return result
            await asyncio.sleep(max(self.backoff_s(number), asked or 0.0))
            number += 1

    def backoff_s(self, number: int) -> float:
        """The wait after attempt `number`: full jitter, uniform up to base x 2^(n-1), capped."""
        exponent = number - 1
        high = (
            self.backoff_cap_s
            if exponent >= 64
            else min(self.backoff_cap_s, self.backoff_base_s * 2**exponent)
        )
        return random.uniform(0.0, high)
