"""What an Antavo stand-in request passes before its events are read: Escher signature, rate
limit, injected failures (see `segment_sync.standins.antavo` for the behaviour)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque

from starlette.requests import Request

from segment_sync.antavo.escher import EscherAuthError, verify_request
from segment_sync.standins.antavo_wire import Rejection
from segment_sync.standins.server import seconds_text

# 503 only: the stand-in answers before registering, which only 503 (or 408/429) tells a client;
# a 500 injected with `fail_next` stands for a 5xx after which the events may be registered.
FAULT_STATUSES = (503,)


class AntavoAdmission:
    """Admission checks of `AntavoStandin`: a 401, 429 or injected 5xx rejection, or nothing."""

    # Set by AntavoStandin.__init__ and configure().
    stack: str
    _credentials: dict[str, str]
    _lock: threading.Lock
    _window: deque[float]
    rate_limit_per_minute: int | None
    rate_limit_window_s: float
    error_rate: float
    retry_after_s: float
    fail_next: deque[int]
    _rng: random.Random

    def _authenticate(self, request: Request, raw: bytes) -> None:
        """Escher-verify the request or raise a 401 rejection."""
        scope = request.scope
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            verify_request(
                request.method,
                path + (f"?{query}" if query else ""),
                headers,
                raw,
                self._credentials,
                self.stack,
            )
        except EscherAuthError as exc:
            raise Rejection(
                401, "UnauthorizedException", 100401, f"Invalid API signature: {exc}"
            ) from None

    def _admit(self) -> None:
        """Sliding-window rate limit: 429 with Retry-After once the window is full."""
        with self._lock:
            limit, window_s = self.rate_limit_per_minute, self.rate_limit_window_s
            if limit is None:
                return
            now = time.monotonic()
            capacity = max(1, int(limit * window_s / 60.0))
            window = self._window
            while window and window[0] <= now - window_s:
                window.popleft()
            if len(window) < capacity:
                window.append(now)
                return
            retry_after = max(1, math.ceil(window[0] + window_s - now))
        raise Rejection(
            429,
            "TooManyRequestsException",
            100429,
            f"API rate limit exceeded: {limit} requests per minute",
            {"Retry-After": str(retry_after)},
        )

    def _inject_fault(self) -> None:
        """A queued `fail_next` status, else a 503 at `error_rate`."""
        with self._lock:
            if self.fail_next:
                status = self.fail_next.popleft()
            elif self.error_rate and self._rng.random() < self.error_rate:
                status = self._rng.choice(FAULT_STATUSES)
            else:
                return
            retry_after = seconds_text(self.retry_after_s)
        if status == 429:
            raise Rejection(
                429,
                "TooManyRequestsException",
                100429,
                "API rate limit exceeded (injected)",
                {"Retry-After": retry_after},
            )
        if status == 503:
            raise Rejection(503, "ServiceUnavailableException", 100503, "Service unavailable")
        raise Rejection(status, "InternalServerErrorException", 100500, "Internal server error")
