"""The receiver's log of refused requests: one warning line each, at most one a second per status.

A refused request (a wrong secret, a batch Segment sent that cannot be stored) is otherwise seen
only by the sender; the operator needs the line to find out why Segment reports failures. A
flood of bad requests (a scanner, a retrying sender) must not flood the log: lines of one status
within `every_s` of the last are counted and the count is told with the next line.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from segment_sync.redaction import Redactor

log = logging.getLogger("segment_sync.inbound.receiver")

MAX_REASON_CHARS = 300


class RefusalLog:
    """Logs why requests were refused, naming the peer; never a secret or an auth header (the
    reason may quote a Content-Type or Content-Encoding as sent, cut to 300 characters)."""

    def __init__(
        self,
        redactor: Redactor,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redactor = redactor
        self._every_s = every_s
        self._clock = clock
        self._last: dict[int, float] = {}
        self._held: Counter[int] = Counter()

    def refused(self, status: int, reason: str, peer: tuple[str, int] | None) -> None:
        now = self._clock()
        last = self._last.get(status)
        if last is not None and now - last < self._every_s:
            self._held[status] += 1
            return
        self._last[status] = now
        held = self._held.pop(status, 0)
        more = f" ({held} more refused with {status} since the last such line)" if held else ""
        client = f"{peer[0]}:{peer[1]}" if peer else "?"
        text = self._redactor.text(reason[:MAX_REASON_CHARS]) or ""
        log.warning("refused a request from %s with HTTP %d: %s%s", client, status, text, more)
