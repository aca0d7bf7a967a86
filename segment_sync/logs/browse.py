"""What `segment-sync logs` reads: the manual's log columns, newest-first listing, one entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from segment_sync.logs.filters import LogName, compile_filter
from segment_sync.logs.time_window import time_range
from segment_sync.logs.vanished import retry_vanished

if TYPE_CHECKING:
    import duckdb

# (column, header) per log, in the manual's order; the columns are also the JSON / CSV keys.
COLUMNS: dict[LogName, list[tuple[str, str]]] = {
    "outbound": [
        ("timestamp", "Timestamp"),
        ("customer_id", "Customer ID"),
        ("event_type", "Event type"),
        ("status_code", "Status code"),
        ("response_time_s", "Response time (s)"),
        ("error", "Error"),
        ("identifier", "Identifier"),
    ],
    "inbound": [
        ("timestamp", "Timestamp"),
        ("customer_id", "Customer ID"),
        ("action", "Action"),
        ("status", "Status"),
        ("event_id", "Event"),
        ("error", "Error"),
        ("identifier", "Identifier"),
    ],
}
# Read beside the manual's columns: every customer of the request (a batch has no single one).
LIST_COLUMNS: dict[LogName, list[str]] = {"outbound": ["customer_ids"], "inbound": []}
# More keys for JSON / CSV: which received event and mapping an inbound row is about.
EXTRA_COLUMNS: dict[LogName, list[str]] = {
    "outbound": ["destination"],
    "inbound": ["event_type", "message_id", "mapping_name", "status_code"],
}
DEFAULT_LIMIT = 50
RECENT_WINDOWS_DAYS = (1, 7, 30)


def newest_rows(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list,
    limit: int,
    search_recent_first: bool,
) -> list[dict]:
    """The first `limit + 1` rows of `sql` (all when limit is 0).

    Newest first: when the last days already hold enough matching rows, older days' files are
    never opened (10M-row logs answer in milliseconds instead of seconds; see bench/logs.py).
    Each window reads only the days the one before did not: a row's `date` partition is its
    timestamp's UTC day, so every row of an older window sorts after every row of a newer one.
    """
    windows = RECENT_WINDOWS_DAYS if limit and search_recent_first else ()
    today = datetime.now(UTC).date()
    found: list[dict] = []
    newer_than: date | None = None  # the oldest day a newer window read
    for days in (*windows, None):
        query, query_params = sql, list(params)
        head, order = query.split(" ORDER BY ", 1)
        if days is not None:
            head += ' AND "date" >= ?'
            query_params.append(today - timedelta(days=days))
        if newer_than is not None:
            head += ' AND "date" < ?'
            query_params.append(newer_than)
        query = f"{head} ORDER BY {order}"
        if limit:
            query += " LIMIT ?"
            query_params.append(limit + 1 - len(found))
        found += retry_vanished(lambda q=query, p=query_params: _dicts(con.execute(q, p)))
        if days is None or len(found) > limit:
            return found
        newer_than = today - timedelta(days=days)
    return found


def query_log(
    con: duckdb.DuckDBPyConnection,
    log: LogName,
    filter_text: str,
    since: str | None,
    until: str | None,
    limit: int,
) -> list[dict]:
    """The rows `logs outbound|inbound` shows, newest first: at most limit + 1 (0: all).

    FilterError for a bad filter or time.
    """
    columns = [name for name, _ in COLUMNS[log]]
    extra = [*LIST_COLUMNS[log], *EXTRA_COLUMNS[log]]
    sql, params = filtered_log_sql(log, [*columns, *extra], filter_text, since, until)
    return newest_rows(con, sql, params, limit, search_recent_first=since is None)


def filtered_log_sql(
    log: LogName, columns: list[str], filter_text: str, since: str | None, until: str | None
) -> tuple[str, list]:
    """`SELECT columns FROM <log>_log` with the manual's filter and the time range, newest
    first, and its parameters; FilterError for a bad filter or time."""
    where, params = compile_filter(filter_text, log)
    when, when_params = time_range(since, until)
    selected = ", ".join(f'"{name}"' for name in columns)
    sql = (
        f"SELECT {selected} FROM {log}_log "
        f'WHERE ({where}) AND ({when}) ORDER BY "timestamp" DESC, identifier DESC'
    )
    return sql, [*params, *when_params]


def entries(
    con: duckdb.DuckDBPyConnection, identifier: str
) -> Iterator[tuple[LogName, dict[str, Any]]]:
    """Every outbound, then inbound, log row with this identifier, oldest first."""
    for log in ("outbound", "inbound"):
        sql = f'SELECT * EXCLUDE ("date") FROM {log}_log WHERE identifier = ? ORDER BY "timestamp"'
        for row in retry_vanished(lambda sql=sql: _dicts(con.execute(sql, [identifier]))):
            yield log, row


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every row of an executed query as a dict by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
