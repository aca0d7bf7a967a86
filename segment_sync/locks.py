"""A file lock the kernel drops with its process: a killed holder never blocks the next run."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(
    path: Path,
    wait_s: float,
    busy: Exception,
    poll_s: float = 0.1,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive flock on `path`; raises `busy` if not acquired within `wait_s`.

    `on_wait` runs before each wait for the holder (e.g. to tell it someone is waiting).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy from None
                if on_wait is not None:
                    on_wait()
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class WriterTurns:
    """Processes writing one SQLite file take turns through an flock beside it.

    SQLite's own busy handler backs off by sleeping up to 100 ms, so with two busy writers the
    one that just committed takes the lock again before the sleeper wakes, and the other starves.
    A flock polled every half millisecond hands the turn over within a millisecond of the commit.
    """

    POLL_S = 0.0005

    def __init__(self, path: Path, wait_s: float = 30) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.wait_s = wait_s
        self._handle = open(path, "a+")  # noqa: SIM115 - held for the owner's lifetime

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn; after `wait_s` without it, go ahead and let SQLite's lock decide."""
        deadline = time.monotonic() + self.wait_s
        held = False
        while not held:
            try:
                fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(self.POLL_S)
        try:
            yield
        finally:
            if held:
                fcntl.flock(self._handle, fcntl.LOCK_UN)

    def close(self) -> None:
        self._handle.close()
