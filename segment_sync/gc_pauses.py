"""Fewer garbage-collector pauses while syncs run: one process-wide setting, shared by them all."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

RUN_THRESHOLDS = (100_000, 50, 100)
_lock = threading.Lock()
_entered = 0
_saved: tuple[int, int, int] | None = None
_froze = False


@contextmanager
def fewer_gc_pauses() -> Iterator[None]:
    """A chunk allocates ~10 objects per row; default thresholds spend a third of the time in gc.

    With so few collections, the reference cycles every request leaves (httpx's response and
    its stream refer to each other, and hold the request's body) reach the oldest generation
    and stay until a full collection: memory grew with the backlog. So the objects that exist
    before the first sync are frozen (a full collection skips them) and the sync collects once
    per chunk. The gc settings are the process's, and the CLI runs several syncs in threads:
    the first to enter saves the thresholds and freezes, the last to leave restores and
    unfreezes. A host that froze objects itself keeps them frozen: then nothing is frozen here.
    """
    global _entered, _saved, _froze
    with _lock:
        if _entered == 0:
            _saved = gc.get_threshold()
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
            gc.set_threshold(*RUN_THRESHOLDS)
        _entered += 1
    try:
        yield
    finally:
        with _lock:
            _entered -= 1
            if _entered == 0:
                assert _saved is not None
                gc.set_threshold(*_saved)
                if _froze:
                    gc.unfreeze()
