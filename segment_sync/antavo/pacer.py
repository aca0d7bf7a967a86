"""Client-side pacing under Antavo's per-minute rate limit."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

RATE_HEADROOM = 0.98  # pace at 98% of the limit, absorbing network jitter at the server


def pacing_interval(per_minute: int) -> float:
    """Seconds between request starts that keep a little under `per_minute`."""
    if per_minute <= 0:
        raise ValueError("per_minute must be > 0")
    return 60.0 / (per_minute * RATE_HEADROOM)


class RateLimiter(Protocol):
    """What AntavoClient needs of a pacer: the local `Pacer` or a shared one (shared_pacer.py)."""

    interval: float

    async def acquire(self) -> None:
        """Wait until a request may start now, then take that start."""

    def pause(self, seconds: float) -> None:
        """No new request starts for `seconds` (a Retry-After); callable from the event loop."""

    async def aclose(self) -> None:
        """Release connections; the limiter is not used afterwards."""


class Pacer:
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
        self.interval = pacing_interval(per_minute)
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
        """No new request starts for `seconds` (a non-finite pause is ignored)."""
        if not math.isfinite(seconds):
            return
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def aclose(self) -> None:
        """Nothing to release: the state lives in this object."""
