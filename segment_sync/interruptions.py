"""Ctrl-C, whichever way it arrives: Python's KeyboardInterrupt, or DuckDB's own report of a
query it stopped for the signal (a RuntimeError "Query interrupted" in duckdb 1.x and 2.x, or
duckdb.InterruptException). Code that catches errors of a read must not mistake the latter for
an error of the data: a damaged file, a failed query."""

from __future__ import annotations

import sys

CTRL_C_EXIT = 130  # 128 + SIGINT, as a shell reports a job Ctrl-C ended
DUCKDB_INTERRUPTED = "Query interrupted"


def is_interruption(exc: BaseException) -> bool:
    """Whether `exc` is Ctrl-C: a KeyboardInterrupt or DuckDB's words for the query it stopped."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    duckdb = sys.modules.get("duckdb")  # never imported only to ask
    interrupt = getattr(duckdb, "InterruptException", None)
    if interrupt is not None and isinstance(exc, interrupt):
        return True
    return type(exc) is RuntimeError and str(exc) == DUCKDB_INTERRUPTED


def reraise_interruption(exc: BaseException) -> None:
    """Raise KeyboardInterrupt if `exc` is Ctrl-C in DuckDB's words; else return."""
    if is_interruption(exc):
        raise KeyboardInterrupt from None
