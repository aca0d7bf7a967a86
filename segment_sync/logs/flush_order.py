"""Flushes that share a writer: each returns only once every row queued before it is written.

A flush takes every queued row of its tables, including rows another thread queued (the CLI's
follow threads, shards and destinations share one writer). Without this, a thread whose rows an
earlier flush took found nothing to write, returned at once, and saved its progress while its
rows were still being written, or were put back after that write failed.
"""

from __future__ import annotations

import threading


class FlushesInFlight:
    """The flushes writing now; `begin` runs under the writer's lock, the rest take it."""

    def __init__(self, lock: threading.Lock) -> None:
        self._changed = threading.Condition(lock)
        self._writing: set[int] = set()
        self._failed: set[int] = set()  # their rows were put back, to be written again
        self._dropped: dict[int, str] = {}  # their rows could not be made a table: why
        self._next = 0

    def begin(self) -> tuple[int, frozenset[int]]:
        """This flush's id, and the flushes already writing (they may hold rows queued before
        it). Call with the writer's lock held, where the flush takes its rows."""
        me, self._next = self._next, self._next + 1
        earlier = frozenset(self._writing)
        self._writing.add(me)
        return me, earlier

    def end(self, me: int, *, ok: bool, dropped: str | None = None) -> None:
        """This flush's rows are written (`ok`), were put back to be written again, or were
        `dropped` (why)."""
        with self._changed:
            self._writing.discard(me)
            if dropped is not None:
                self._dropped[me] = dropped
            elif not ok:
                self._failed.add(me)
            self._changed.notify_all()

    def wait(self, earlier: frozenset[int]) -> bool:
        """Wait for the `earlier` flushes to end; True when they all wrote their rows, False
        when some were put back; ValueError when some were dropped."""
        with self._changed:
            self._changed.wait_for(lambda: not (earlier & self._writing))
            dropped = [self._dropped[i] for i in sorted(earlier) if i in self._dropped]
            if dropped:
                raise ValueError(f"rows queued before this flush were not written: {dropped[0]}")
            return not (earlier & self._failed)
