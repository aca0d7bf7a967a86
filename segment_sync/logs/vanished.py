"""Rerun a query that met a log file a merge deleted after the query listed it.

A merge (hourly, or at a run's end: fresh.py) publishes its file and then deletes its inputs, and
DuckDB lists a view's files before it opens them, so a query running across that moment can fail
with "Cannot open file ...: No such file or directory". A new attempt lists the files again and
finds the merged file instead; the `logs` commands and the logbook run through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
ATTEMPTS = 3


def is_vanished_file(exc: BaseException) -> bool:
    """Did DuckDB fail because a listed log file was gone when it opened it?"""
    import duckdb  # loaded already by whoever ran the query

    text = str(exc)
    return (
        isinstance(exc, duckdb.IOException)
        and "No such file or directory" in text
        and ".parquet" in text
    )


def retry_vanished(run: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """`run()`, again (up to `attempts` in all) while it fails on a file a merge deleted."""
    import duckdb

    for attempt in range(1, attempts + 1):
        try:
            return run()
        except duckdb.IOException as exc:
            if attempt == attempts or not is_vanished_file(exc):
                raise
    raise AssertionError("unreachable")
