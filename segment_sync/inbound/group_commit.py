"""The ingest's group commit: answered requests recorded together, log rows before marks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segment_sync.signals import settle

if TYPE_CHECKING:
    from segment_sync.inbound.ingest_result import IngestResult


@dataclass
class Outcomes:
    """What one Antavo request (or a chunk's unsent items) changes: log rows, then buffer states."""

    rows: list[dict[str, Any]]
    done: list[tuple[int, list[str]]]
    failed: list[tuple[int, str]]
    retry: list[tuple[int, str]]
    unknown: list[tuple[int, str]] = field(default_factory=list)
    registered: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # partly sent
    columns: dict[str, list[Any]] | None = None  # more rows, as a list per column (extend_lists)


class GroupCommit:
    """Records answered requests together: those answered while a write runs share the next one.

    Each `submit` returns once its own outcomes are written durably and marked (or raises what
    the write raised), so the log-before-mark order holds per request; the writes run in a
    thread. With `mark` given, `write` only writes the log rows and `mark` then moves the
    buffer status: one group's marks run while the next group's log rows are written.
    """

    _Stage = Callable[[list[Outcomes], "IngestResult"], None]

    def __init__(self, write: _Stage, mark: _Stage | None = None) -> None:
        self._write = write
        self._mark = mark
        self._waiting: list[tuple[Outcomes, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self._arrived: asyncio.Event | None = None  # set when a request arrives while marks run

    async def submit(self, outcomes: Outcomes, result: IngestResult) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((outcomes, done))
        if self._arrived is not None:
            self._arrived.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain(result))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # A stop signal cancelled the run after Antavo answered: record the answer before
            # unwinding, so a clean stop repeats nothing it was told about.
            if not done.done():
                with contextlib.suppress(Exception):
                    await done
            raise

    async def _drain(self, result: IngestResult) -> None:
        marking: asyncio.Task | None = None  # the previous group's marks
        while self._waiting or marking is not None:
            if not self._waiting:  # the marks run; a request answered meanwhile is written now
                self._arrived = asyncio.Event()  # made here: bound to this run's loop
                arrival = asyncio.ensure_future(self._arrived.wait())
                await asyncio.wait({marking, arrival}, return_when=asyncio.FIRST_COMPLETED)
                arrival.cancel()
                self._arrived = None
                if marking.done():
                    marking = None
                continue
            taken, self._waiting = self._waiting, []
            written = await self._stage(self._write, taken, result, settle_ok=self._mark is None)
            if marking is not None:
                await marking
                marking = None
            if written and self._mark is not None:
                marking = asyncio.ensure_future(self._stage(self._mark, taken, result))

    async def _stage(
        self,
        stage: _Stage,
        taken: list[tuple[Outcomes, asyncio.Future]],
        result: IngestResult,
        settle_ok: bool = True,
    ) -> bool:
        """Run one stage for `taken` in a thread; each waiting request raises what it raised
        (LogWriteError), and gets its answer when it went well and `settle_ok`."""
        try:
            await asyncio.to_thread(stage, [o for o, _ in taken], result)
        except Exception as exc:
            for _, done in taken:
                settle(done, error=exc)
            return False
        if settle_ok:
            for _, done in taken:
                settle(done)
        return True
