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
