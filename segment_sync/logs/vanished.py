"""Rerun a query that met a log file a merge deleted after the query listed it.

A merge (hourly, or at a run's end: fresh.py) publishes its file and then deletes its inputs, and
DuckDB lists a view's files before it opens them, so a query running across that moment can fail
with "Cannot open file ...: No such file or directory". A new attempt lists the files again and
finds the merged file instead; the `logs` commands, the logbook and every query the sync itself
runs over the logs (run counts and reports, checks, reconciliation, replay) run through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")
ATTEMPTS = 3


_GONE_LOCALLY = ("No such file or directory", "No files found that match the pattern")


def is_vanished_file(exc: BaseException) -> bool:
    """Did DuckDB fail because a listed log file was gone when it opened it? Locally DuckDB
    says "Cannot open file ...: No such file or directory", or, when it lists a file again
    while binding a view, "No files found that match the pattern "<the file>""; over S3 (Arrow
    datasets, s3_views.py) "reading the stream ... failed: IOError: Path does not exist ..."."""
    import duckdb  # loaded already by whoever ran the query

    text = str(exc)
    if ".parquet" not in text:
        return False
    if isinstance(exc, duckdb.IOException):
        return any(words in text for words in _GONE_LOCALLY)
    return isinstance(exc, duckdb.InvalidInputException) and "Path does not exist" in text


def retry_vanished(run: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """`run()`, again (up to `attempts` in all) while it fails on a file a merge deleted."""
    import duckdb

    for attempt in range(1, attempts + 1):
        try:
            return run()
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            if attempt == attempts or not is_vanished_file(exc):
                raise
    raise AssertionError("unreachable")


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first row of `sql`, rerun while it meets a file a merge deleted."""
    return retry_vanished(lambda: con.execute(sql, params).fetchone())


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[Any]:
    """Every row of `sql`, rerun while it meets a file a merge deleted."""
    return retry_vanished(lambda: con.execute(sql, params).fetchall())
