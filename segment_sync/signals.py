"""Run a coroutine so that SIGINT or SIGTERM stops it cleanly, whoever handles the signal.

Python's Ctrl-C handler, Dagster's (which raises DagsterExecutionInterruptedError) and ours
raise an exception from the signal handler. In an asyncio program that exception lands wherever
the main thread is: inside a loop callback asyncio logs it and carries on ("Exception in
callback"), so the stop is lost and the run goes on to the end; inside a library it may become a
network error and a retried request. Here the handler that was installed still decides, but its
exception is held: the run's task is cancelled, unwinds through its `finally` blocks (logs are
written, claims given back), and only then is the exception raised, as the handler meant.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_stoppably(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, where a stop signal cancels `main` before its handler's exception
    is raised; a second signal is handled at once, as before."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)  # signals reach the main thread only
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        task = loop.create_task(main)
        held: list[BaseException] = []
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            handler = previous[signum]
            if held:
                handler(signum, frame)  # a second stop: the handler acts at once
                return
            try:
                handler(signum, frame)
            except BaseException as exc:  # noqa: BLE001 - raised below, once the task unwound
                held.append(exc)
                task.cancel()  # as asyncio's own Ctrl-C handling does
                loop.call_soon_threadsafe(lambda: None)  # wake the loop

        for signum, handler in previous.items():
            if callable(handler):
                signal.signal(signum, on_signal)
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError:
            if held:
                raise held[0] from None
            raise
        finally:
            for signum, handler in previous.items():
                if callable(handler) and signal.getsignal(signum) is on_signal:
                    signal.signal(signum, handler)
        if held:  # the run finished before the cancellation reached it
            raise held[0]
        return result


def settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    """Give `future` its result or error, unless a stop already cancelled it (no
    "Task exception was never retrieved" for an answer that came after the cancel)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class FollowStop:
    """Which stop signal ended a follow early (None: none did)."""

    def __init__(self) -> None:
        self.signal: str | None = None


@contextmanager
def first_stop_ends_following(stop_following: threading.Event) -> Iterator[FollowStop]:
    """The first SIGINT or SIGTERM sets `stop_following` (the follow ends after its current
    pass, logged, progress saved) instead of interrupting; a second one is handled as before.

    Ctrl-C, a deploy's SIGTERM and Dagster's run termination (a SIGINT the run worker sends
    itself) all arrive as one of these.
    """
    stop = FollowStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.signal is None:
            stop.signal = signal.Signals(signum).name
            stop_following.set()
            return
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        else:  # the default action (or none): as if we had never been installed
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            signal.raise_signal(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def stops_deferred(
    on_first: Callable[[], None] | None = None, *, redeliver: bool = True
) -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while the block runs (a log flush, a run's record): a signal is
    noted, `on_first` called for the first, and (with `redeliver`) raised again once the block is
    done, to whichever handler was in force. Yields the signals held, in order.

    Why: a handler's exception raised inside a write loses whatever that write held (rows taken
    off the queue, the `sync_runs` row not yet written). The block is short local work, so the
    wait stays short; a signal meant to cut a long wait still does so outside it. Off the main
    thread (no signal is delivered there) it defers nothing.

    A write can hang all the same (S3, NFS): the third signal held (or a second SIGTERM) puts the
    previous handlers back and hands it to them at once; nothing is raised again on the way out.
    Nested blocks count together, and the escalation reaches the outermost one's handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    deferring = _Deferring(on_first)
    deferring.previous = {s: signal.signal(s, deferring) for s in STOP_SIGNALS}
    try:
        yield deferring.held
    finally:
        if not deferring.escalated:  # else the previous handlers are back already
            for signum, handler in deferring.previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            if redeliver:
                deferring.pass_on()


ESCALATED = (
    b"\nstopping now, without waiting for the write: queued log rows may not be written; "
    b"the next run resends what was not logged\n"
)


class _Deferring:
    """The handler `stops_deferred` installs: it holds signals, and escalates on the third."""

    def __init__(self, on_first: Callable[[], None] | None) -> None:
        self.on_first = on_first
        self.held: list[int] = []
        self.previous: dict[int, Any] = {}
        self.escalated = False

    def outer(self) -> _Deferring | None:
        """The enclosing block's handler, when this block is nested in another."""
        outer = self.previous.get(signal.SIGINT)
        return outer if isinstance(outer, _Deferring) else None

    def chain(self) -> list[_Deferring]:
        """This block and those it is nested in, innermost first."""
        blocks: list[_Deferring] = []
        block: _Deferring | None = self
        while block is not None:
            blocks.append(block)
            block = block.outer()
        return blocks

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        blocks = self.chain()
        held = [s for block in blocks for s in block.held]
        self.held.append(signum)  # first: nothing on_first raises can lose the signal
        if not held:
            for block in blocks:
                if block.on_first is not None:
                    with suppress(OSError):  # stderr closed (`... 2>&1 | head -1`)
                        block.on_first()
        held.append(signum)
        if len(held) >= 3 or held.count(signal.SIGTERM) >= 2:
            self.escalate(signum, frame)

    def escalate(self, signum: int, frame: FrameType | None) -> None:
        """Put the previous handlers back and let them act on `signum` now."""
        self.escalated = True
        for s, handler in self.previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        handler = self.previous[signum]
        if isinstance(handler, _Deferring):
            handler.escalate(signum, frame)
            return
        if handler is signal.SIG_IGN:
            return
        with suppress(OSError):
            os.write(2, ESCALATED)  # os.write: a print may be in progress on the main thread
        if callable(handler):
            handler(signum, frame)
        else:  # the default action: the process ends
            signal.raise_signal(signum)

    def pass_on(self) -> None:
        """Raise the held signals again, each even if the one before raised."""
        outer = self.outer()
        if outer is not None:  # still held, by the enclosing block, and counted there
            outer.held.extend(self.held)
            return
        _raise_each(list(dict.fromkeys(self.held)))


def _raise_each(signums: list[int]) -> None:
    # Nested try/finally: SIGINT's KeyboardInterrupt must not lose a SIGTERM held with it.
    if not signums:
        return
    try:
        signal.raise_signal(signums[0])
    finally:
        _raise_each(signums[1:])


async def until_threads_done(jobs: list[concurrent.futures.Future]) -> None:
    """Wait until every thread of `jobs` has ended, even if this task is cancelled meanwhile
    (a second stop signal); then raise that cancellation. Their own errors are theirs."""
    cancelled = False
    while pending := [asyncio.wrap_future(job) for job in jobs if not job.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
