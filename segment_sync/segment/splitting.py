"""Narrow a refused /v1/batch request to the messages Segment refuses: split it and resend (pure).

Segment answers a batch with one status. When it refuses one (400 or 413), the message(s) it
objects to are found by sending each half again, and the halves of a refused half, down to single
messages; everything in a half Segment accepts is delivered. One refused message among n costs
at most 2 * ceil(log2(n)) more requests (24 for a batch of 2,500). Each original request may
spend at most `MAX_SPLIT_REQUESTS` on this, so a batch where many messages are refused (or every
one, as when a proxy refuses everything) cannot multiply the run's requests; the parts of
several messages still refused when the budget is spent are not failed (which of their messages
Segment refuses is unknown): the sync leaves them pending for reconciliation or a replay, which
narrow them further. A split is not a retry:
each half is a new request with its own body, and the retry policy (429, 5xx, network) applies
to each on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# About four refused messages isolated in a full batch of 2,500 (24 requests each, fewer when
# their halves are shared); a batch of up to 51 messages is always narrowed to single messages.
MAX_SPLIT_REQUESTS = 100


@dataclass(frozen=True, slots=True)
class Part:
    """Messages [start, stop) of a chunk, sent as one request, cut from original request `origin`."""

    origin: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def halves(self) -> tuple[Part, Part]:
        middle = (self.start + self.stop) // 2
        return Part(self.origin, self.start, middle), Part(self.origin, middle, self.stop)


class SplitPlan:
    """Which refused parts are resent as halves, within each original request's budget."""

    def __init__(self, bounds: Sequence[tuple[int, int]], budget: int = MAX_SPLIT_REQUESTS) -> None:
        self.first = [Part(origin, start, stop) for origin, (start, stop) in enumerate(bounds)]
        self.budget = budget
        self._spent = [0] * len(self.first)

    def spent(self, origin: int) -> int:
        """Requests spent so far narrowing original request `origin`."""
        return self._spent[origin]

    def after_refusal(self, refused: Sequence[Part]) -> tuple[list[Part], list[Part]]:
        """(the halves to send next, the parts refused for good), from parts Segment refused.

        A part stays refused when it is one message (it is the one Segment refuses) or when
        splitting it would take its original request past the budget.
        """
        resend: list[Part] = []
        final: list[Part] = []
        for part in refused:
            if len(part) > 1 and self._spent[part.origin] + 2 <= self.budget:
                self._spent[part.origin] += 2
                resend.extend(part.halves())
            else:
                final.append(part)
        return resend, final
