"""The logs as pandas DataFrames, for notebooks: the manual's filters or any SQL, read-only.

    from segment_sync.logs import logbook

    logs = logbook.open("data/segment_sync.yaml")       # or logbook.open(logs_dir="data/logs")
    failed = logs.outbound("Status code is not 200 and Event type is in track", since="1d")
    per_day = logs.sql("SELECT * FROM daily_summary WHERE direction = ?", ["outbound"])

A logbook never blocks or fails a run that writes logs, a maintenance job, or another analyst
(see read_only.py); each query sees every row published before it started.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segment_sync.logs.browse import COLUMNS, filtered_log_sql
from segment_sync.logs.filters import FilterError, LogName
from segment_sync.logs.object_store import is_object_store
from segment_sync.logs.read_only import (
    VIEWS,
    LogsSQLError,
    NoLogsError,
    open_read_only,
    refresh_views,
    run_sql,
    sql_error,
)
from segment_sync.logs.schema import TABLES

# The errors a notebook may catch as `logbook.FilterError` and so on.
__all__ = ["FilterError", "Logbook", "LogsSQLError", "NoLogsError", "open"]

Moment = str | datetime | date
BODY_COLUMNS = ("request_body", "response_body")
DUCKDB_VECTOR_ROWS = 2048  # DuckDB hands results over in vectors of this many rows


class Logbook:
    """Read-only access to the log views; every answer is a pandas DataFrame."""

    def __init__(self, logs_dir: Path | str) -> None:
        """Open the views over `logs_dir`, a folder or `s3://bucket/prefix` (NoLogsError if it
        does not exist)."""
        self._con = open_read_only(logs_dir)
        self.logs_dir = logs_dir if is_object_store(logs_dir) else Path(logs_dir).resolve()

    def outbound(
        self,
        filter: str = "",
        *,
        since: Moment | None = None,
        until: Moment | None = None,
        limit: int | None = None,
        bodies: bool = False,
    ) -> pd.DataFrame:
        """Requests to Segment matching the manual's filter, newest first.

        `filter` is the wording of `segment-sync logs outbound --filter`, e.g. "Event type is in
        track and Status code is 5xx"; `since`/`until` take the same text ("1h", "2026-11-28")
        or a datetime/date. All matching rows unless `limit`; the manual's columns first, then
        every other column (`bodies=True` adds the request and response bodies).
        FilterError (a ValueError) names a filter or time it cannot read.
        """
        return self._log("outbound", filter, since, until, limit, bodies)

    def inbound(
        self,
        filter: str = "",
        *,
        since: Moment | None = None,
        until: Moment | None = None,
        limit: int | None = None,
        bodies: bool = False,
    ) -> pd.DataFrame:
        """Events sent to Antavo (and those never sent) matching the manual's filter, newest
        first; e.g. "Status is in error, skipped". Otherwise like `outbound`."""
        return self._log("inbound", filter, since, until, limit, bodies)

    def sql(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Any read-only SQL over the views (`?` or `$name` parameters); the last statement's
        result. LogsSQLError (a ValueError) carries DuckDB's message or why a write is refused."""
        refresh_views(self._con, self.logs_dir)
        with self._files_named():
            cursor = run_sql(self._con, query, params, self.logs_dir)
            return cursor.df() if cursor.description else pd.DataFrame()

    def sql_chunks(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        chunk_rows: int = 100_000,
    ) -> Iterator[pd.DataFrame]:
        """The result of `query` as DataFrames of about `chunk_rows` rows each (a multiple of
        2,048), for results too big for memory. It runs on its own cursor, so other queries may
        run between chunks; that cursor does not see TEMP tables made with `sql`."""
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        vectors = max(1, chunk_rows // DUCKDB_VECTOR_ROWS)
        refresh_views(self._con, self.logs_dir)
        cursor = self._con.cursor()
        try:
            result = run_sql(cursor, query, params, self.logs_dir)
            if not result.description:
                return
            while True:
                with self._files_named():
                    chunk = result.fetch_df_chunk(vectors)
                if chunk.empty:
                    return
                yield chunk
        finally:
            cursor.close()

    @property
    def views(self) -> list[str]:
        """The views to query: outbound_log, outbound_messages, inbound_log, ... daily_summary."""
        return list(VIEWS)

    def close(self) -> None:
        """Close the connection (also done by `with`)."""
        self._con.close()

    def __enter__(self) -> Logbook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Logbook({str(self.logs_dir)!r})"

    def _log(
        self,
        log: LogName,
        filter_text: str,
        since: Moment | None,
        until: Moment | None,
        limit: int | None,
        bodies: bool,
    ) -> pd.DataFrame:
        """One log's rows through the CLI's filter and time range."""
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValueError(f"limit must be a whole number >= 0 or None, got {limit!r}")
        sql, params = filtered_log_sql(
            log, _columns(log, bodies), filter_text or "", _as_text(since), _as_text(until)
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        refresh_views(self._con, self.logs_dir)
        with self._files_named():
            return run_sql(self._con, sql, params, self.logs_dir).df()

    @contextlib.contextmanager
    def _files_named(self) -> Iterator[None]:
        """DuckDB's errors while rows are fetched as LogsSQLError, naming the damaged log file
        and the fix when one is to blame (run_sql does so for errors while running)."""
        try:
            yield
        except duckdb.Error as exc:
            raise sql_error(exc, self.logs_dir) from None


def open(  # shadows the builtin on purpose: reads as `logbook.open(...)`
    settings: Path | str | None = None, *, logs_dir: Path | str | None = None
) -> Logbook:
    """The logs named by a settings file (like the CLI's --settings: default
    $SEGMENT_SYNC_SETTINGS, else data/segment_sync.yaml), or by `logs_dir` directly."""
    if settings is not None and logs_dir is not None:
        raise ValueError("give a settings file or a logs_dir, not both")
    if logs_dir is None:
        from segment_sync.settings import load_settings

        logs_dir = load_settings(None if settings is None else str(settings)).logs.dir
    return Logbook(logs_dir)


def _columns(log: LogName, bodies: bool) -> list[str]:
    """The manual's columns first, then the rest of the table's, bodies only when asked."""
    first = [name for name, _ in COLUMNS[log]]
    rest = [
        name
        for name in TABLES[f"{log}_log"].names
        if name not in first and (bodies or name not in BODY_COLUMNS)
    ]
    return [*first, *rest]


def _as_text(moment: Moment | None) -> str | None:
    """A time for `time_range`: text as typed, a date or datetime in ISO form (naive is UTC)."""
    if moment is None or isinstance(moment, str):
        return moment
    return moment.isoformat()
