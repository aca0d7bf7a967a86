"""The receiver's group commit: concurrent requests' rows stored in one transaction, then answered.

One writer thread takes every request waiting in its queue, stores them in one transaction, and
only then answers each of them. With durable SQLite (synchronous=FULL) a commit costs an fsync,
so this is what keeps single-event requests fast; a request whose group fails is retried on its
own, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import Row
from segment_sync.redaction import error_kind
from segment_sync.signals import settle

log = logging.getLogger(__name__)

GROUP_MAX_ROWS = 20_000


@dataclass
class _Job:
    rows: list[Row]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    """A thread that stores concurrent requests' rows in one transaction, then answers each."""

    def __init__(self, buffer: InboundBuffer, max_rows: int = GROUP_MAX_ROWS) -> None:
        """Writer for `buffer`; a group holds up to `max_rows` rows (more if one request is bigger)."""
        self.buffer = buffer
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the receiver's writer is closed")
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="inbound-group-commit", daemon=True
                    )
                    self._thread.start()

    async def store(self, rows: list[Row]) -> tuple[int, int]:
        """Queue rows for the next group commit; returns (stored, duplicates) once committed."""
        if self._closed:
            raise RuntimeError("the receiver's writer is closed")
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(rows, future, loop))
        return await future

    def close(self, timeout: float = 10) -> None:
        """Finish queued work and stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            group = [job]
            size = len(job.rows)
            while size < self.max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += len(nxt.rows)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        # One wake-up of each waiting loop per group, not one per request.
        answers: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for job, result, error in self._store(group):
            answers.setdefault(job.loop, []).append((job.future, result, error))
        for loop, settled in answers.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone; nobody waits any more
                loop.call_soon_threadsafe(_settle_all, settled)

    def _store(
        self, group: list[_Job]
    ) -> list[tuple[_Job, tuple[int, int] | None, BaseException | None]]:
        try:
            results = self.buffer.add_row_groups([job.rows for job in group])
        except Exception as exc:  # answered per request
            if len(group) == 1:
                log.warning(
                    "storing %d inbound events failed: %s", len(group[0].rows), error_kind(exc)
                )
                return [(group[0], None, exc)]
            # isolate the request that made the group fail
            return [answer for job in group for answer in self._store([job])]
        return [(job, result, None) for job, result in zip(group, results, strict=True)]


_Answer = tuple[asyncio.Future, tuple[int, int] | None, BaseException | None]


def _settle_all(answers: list[_Answer]) -> None:
    for future, result, error in answers:
        settle(future, result, error)
