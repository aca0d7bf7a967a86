"""Client-side pacing under Antavo's per-minute rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

RATE_HEADROOM = 0.98  # pace at 98% of the limit, absorbing network jitter at the server


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
