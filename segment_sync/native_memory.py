"""Keep a long sync's native memory at its working set (allocators keep what was freed)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import pyarrow as pa

from segment_sync.arrow_pool import operator_pool

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameters
_M_ARENA_MAX = -8
# Measured on 1,000,000 events (bench/outbound.py): mimalloc or jemalloc pools, glibc's moving
# threshold or malloc_trim after each chunk all peaked 60-180 MiB higher than this.
MMAP_THRESHOLD_BYTES = 128 * 1024
# With the threshold fixed, two arenas (not 8 per core: every reader, gzip and DuckDB thread
# kept its own, each with its free fragments) and a trim after each chunk peaked ~8 MiB lower
# again (bench/outbound_memory.py, 1,000,000 events, twice each).
ARENA_MAX = 2
_lock = threading.Lock()
_done = False


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has neither)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def bound_native_memory() -> None:
    """Once per process running a sync: Arrow on the C allocator unless the operator chose a
    pool (the `run outbound` CLI already started Arrow on it: arrow_pool.py), large blocks mapped.

    Arrow's default pool (mimalloc) keeps freed pages for reuse, and glibc raises its mmap
    threshold after each large free until multi-MB buffers (a chunk's columns, a request body)
    are carved from the heaps, where they fragment: resident memory crept up chunk after
    chunk. Here big buffers are mapped and unmapped, so a freed one goes back to the system.
    """
    global _done
    with _lock:
        if _done:
            return
        _done = True
        if operator_pool() in (None, "system"):  # an operator's other choice stands
            pa.set_memory_pool(pa.system_memory_pool())  # pyarrow came first (Dagster steps)
        if _LIBC is not None:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            _LIBC.mallopt(_M_ARENA_MAX, ARENA_MAX)


def trim_native_memory() -> None:
    """Give the C heaps' free pages back (after a chunk: what it freed is not reused at once)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
