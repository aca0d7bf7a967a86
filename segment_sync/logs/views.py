"""The analysts' side: DuckDB views over the Parquet logs, and the views-only database file.

Why the views work with no data yet: every table keeps one zero-row `_schema.parquet` typed with
the current schema inside the partition glob. The glob therefore always matches (DuckDB fails on a
glob that matches nothing), every column has its declared type even before the first row, and with
`union_by_name` a column added to the schema later shows as NULL for older files. This uses only
documented `read_parquet` behaviour, so the views work from any DuckDB client the analysts use.
The alternative, a typed empty SELECT unioned with `read_parquet(..., allow_empty = true)`, relies
on an option older clients lack. Maintenance skips files whose name starts with `_`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from segment_sync.logs.damaged import explain
from segment_sync.logs.final_outcomes import final_outcomes_sql
from segment_sync.logs.layout import (
    PARTITION_PREFIX,
    SCHEMA_PARTITION,
    SUMMARY_SUFFIX,
    TEMP_SUFFIX,
    ensure_layout,
)
from segment_sync.logs.object_store import is_object_store, s3_logs
from segment_sync.logs.request_figures import QUANTILES, REQUEST_FAILED, requests_sql
from segment_sync.logs.schema import TABLES
from segment_sync.logs.vanished import retry_vanished

ANALYTICS_DB_NAME = "segment_sync.duckdb"


class ObjectStoreLogs(ValueError):
    """The analysts' shared DuckDB file is not made for logs on object storage."""


# The analysts' file holds only views, so create it in the oldest storage format DuckDB 2 writes:
# analysts can open it with any DuckDB client from 1.0 on.
ANALYTICS_STORAGE_VERSION = "v1.0.0"


def _quote_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _table_view(root: Path, table: str) -> str:
    """CREATE OR REPLACE VIEW for one log table over its Parquet files."""
    glob = (root / table / f"{PARTITION_PREFIX}*" / "*.parquet").as_posix()
    columns = ", ".join(_quote_ident(name) for name in [*TABLES[table].names, "date"])
    return (
        f"CREATE OR REPLACE VIEW {_quote_ident(table)} AS SELECT {columns} FROM read_parquet("
        f"{_quote_literal(glob)}, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'date': DATE})"
    )


# Requests and response times count attempts; messages count each message once, on the day of
# its latest attempt, by its final outcome (a message failed in an outage and delivered later is
# delivered). Inbound counts each event of each Antavo request.
_DAILY_SUMMARY = """CREATE OR REPLACE VIEW daily_summary AS
WITH {requests_ctes}, messages AS (
    SELECT "date" AS day, event_type AS type,
        count(*) AS messages,
        count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
        count(*) FILTER (WHERE outcome = 'failed') AS failed,
        count(*) FILTER (WHERE outcome = 'pending') AS pending
    FROM ({final_outcomes})
    GROUP BY ALL
)
SELECT day, 'outbound' AS direction, type,
    coalesce(requests, 0) AS requests,
    coalesce(messages, 0) AS messages,
    coalesce(delivered, 0) AS delivered,
    coalesce(failed, 0) AS failed,
    coalesce(pending, 0) AS pending,
    coalesce(errors, 0) AS errors,
    response_times[1] AS p50_response_time_s, response_times[2] AS p95_response_time_s
FROM requests FULL OUTER JOIN messages USING (day, type)
UNION ALL
SELECT day, 'inbound' AS direction, type, requests, messages, delivered, failed, pending, errors,
    response_times[1] AS p50_response_time_s, response_times[2] AS p95_response_time_s
FROM (SELECT "date" AS day, action AS type,
    count(DISTINCT identifier) AS requests,
    count(*) FILTER (WHERE status <> 'skipped') AS messages,  -- skipped: matched no mapping
    count(*) FILTER (WHERE status = 'success') AS delivered,
    count(*) FILTER (WHERE status = 'error') AS failed,
    0 AS pending,
    count(*) FILTER (
        WHERE status = 'error' OR (identifier IS NOT NULL AND ({request_failed}))
    ) AS errors,
    {quantiles} AS response_times
FROM inbound_log
GROUP BY ALL)
ORDER BY day, direction, type"""

# A day's requests come from its data file's summary (summaries.py) while that file is the only
# data file of the day, as listed when the view runs; every other day from its rows. `IN` (not
# `NOT IN`): DuckDB then opens only the live days' files. A day whose partition appears between
# the two listings is left out, as if the view had run a moment earlier. Whether a day has its
# summary is decided from the summaries READ (one listing, materialised), not from a second glob:
# a summary published between two listings (compaction running meanwhile) made its day counted
# by neither half, its requests silently missing from the result.
_SUMMARISED_REQUESTS = """data_files AS (
    SELECT CAST(regexp_extract(file, '/date=([0-9-]+)/[^/]*$', 1) AS DATE) AS day,
        regexp_extract(file, '[^/]*$') AS name
    FROM glob({data_glob})
    WHERE NOT starts_with(regexp_extract(file, '[^/]*$'), '_')
), summaries AS MATERIALIZED (
    SELECT "date" AS day, regexp_extract(filename, '[^/]*$') AS summary,
        type, requests, errors, response_times
    FROM read_parquet({summary_glob}, hive_partitioning = true,
        hive_types = {{'date': DATE}}, filename = true)
), summarised_days AS (
    SELECT day, any_value(name) || '{suffix}' AS summary
    FROM data_files
    GROUP BY day
    HAVING count(*) = 1
        AND any_value(name) || '{suffix}' IN (SELECT summary FROM summaries)
), requests AS (
    SELECT s.day, s.type, s.requests, s.errors, s.response_times
    FROM summaries AS s
    WHERE EXISTS (SELECT 1 FROM summarised_days AS d WHERE d.day = s.day AND d.summary = s.summary)
    UNION ALL
    {live}
)"""


def daily_summary_sql(root: Path | None = None) -> str:
    """CREATE OR REPLACE VIEW daily_summary; with the logs' `root`, summarised days' requests
    are read from their summaries (summaries.py), else (logs on S3) every day is aggregated."""
    if root is None:
        requests = f"requests AS ({requests_sql('outbound_log')})"
    else:
        directory = root / "outbound_log" / f"{PARTITION_PREFIX}*"
        live = requests_sql(
            "outbound_log",
            '"date" IN (SELECT day FROM data_files EXCEPT SELECT day FROM summarised_days)',
        )
        requests = _SUMMARISED_REQUESTS.format(
            data_glob=_quote_literal((directory / "*.parquet").as_posix()),
            summary_glob=_quote_literal((directory / f"*{SUMMARY_SUFFIX}").as_posix()),
            suffix=SUMMARY_SUFFIX,
            live=live,
        )
    return _DAILY_SUMMARY.format(
        requests_ctes=requests,
        final_outcomes=final_outcomes_sql(),
        request_failed=REQUEST_FAILED,
        quantiles=QUANTILES,
    )


DAILY_SUMMARY_SQL = daily_summary_sql()


def view_sql(logs_dir: Path | str) -> list[str]:
    """The CREATE OR REPLACE VIEW statements, with absolute paths, in dependency order."""
    root = Path(logs_dir).resolve()
    # Summaries are read only while this code's typed empty summary keeps their glob matching:
    # a read-only mount whose writers run other code (another fingerprint) has none of this
    # code's, and a glob matching nothing failed every view; its days are aggregated instead.
    typed_empty = root / "outbound_log" / SCHEMA_PARTITION / f"_schema{SUMMARY_SUFFIX}"
    summaries = root if typed_empty.is_file() else None
    return [*(_table_view(root, table) for table in TABLES), daily_summary_sql(summaries)]


def connect(logs_dir: Path | str, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in-memory unless `database` is given) with the log views defined;
    UnreadableLogFile names a damaged log file that keeps them from being defined."""
    if is_object_store(logs_dir):
        from segment_sync.logs.s3_views import register_views

        con = duckdb.connect(database or ":memory:")
        try:
            register_views(con, s3_logs(logs_dir))
        except Exception:
            con.close()
            raise
        return con
    ensure_layout(logs_dir)
    con = duckdb.connect(database or ":memory:")
    try:
        _create_views(con, logs_dir)
    except Exception:
        con.close()
        raise
    return con


def _create_views(con: duckdb.DuckDBPyConnection, logs_dir: Path | str) -> None:
    """Define the views; binding one reads every file's footer, so a damaged file fails here."""
    try:
        for statement in view_sql(logs_dir):
            retry_vanished(lambda statement=statement: con.execute(statement))
    except duckdb.Error as exc:
        unreadable = explain(exc, logs_dir)
        if unreadable is None:
            raise
        raise unreadable from None


def analytics_db_after_a_run(logs_dir: Path | str) -> Path | None:
    """The analysts' DuckDB file, created if this is the first run to end (the hourly
    maintenance and `segment-sync logs db` refresh it); None for logs on object storage."""
    if is_object_store(logs_dir):
        return None
    path = Path(logs_dir).resolve() / ANALYTICS_DB_NAME
    return path if path.exists() else ensure_analytics_db(logs_dir)


def ensure_analytics_db(logs_dir: Path | str) -> Path:
    """Create or refresh `<logs_dir>/segment_sync.duckdb` with the views, never touching readers.

    DuckDB locks a file for the process that opens it read-write, and even a read-only reader
    blocks a writer, so the views are written into a new file beside it and renamed over it.
    A session that opened the old file keeps it (POSIX keeps an open file alive); the views read
    the Parquet files, so that session still sees every new row, and a new session gets the new
    views. The rename is atomic: a reader never sees a half-written file.
    ObjectStoreLogs for logs on S3, where views are defined per session instead.
    """
    if is_object_store(logs_dir):
        raise ObjectStoreLogs(
            f"logs.dir is on object storage ({s3_logs(logs_dir).url.split('?')[0]}): there is no "
            "shared DuckDB file; use `segment-sync logs sql` or `logbook.open()`, or DuckDB's "
            "httpfs extension (see docs/deploying/object-storage.md)"
        )
    root = Path(logs_dir).resolve()
    ensure_layout(root)
    path = root / ANALYTICS_DB_NAME
    fresh = root / f".{ANALYTICS_DB_NAME}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    try:
        con = duckdb.connect(
            str(fresh), config={"storage_compatibility_version": ANALYTICS_STORAGE_VERSION}
        )
        try:
            _create_views(con, root)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)
        Path(f"{fresh}.wal").unlink(missing_ok=True)
    return path
