"""The analysts' views, opened read-only for `logs sql` and the Python logbook.

Why a private database: the shared `segment_sync.duckdb` may be held read-write by an analyst's
own DuckDB session (DuckDB then refuses every other process, read-only ones too), may predate
the installed code's views, or may not exist yet. So each session writes the same views
(`view_sql`) into a new file in the temporary folder, reopens it read-only and unlinks it at
once: nothing is shared, nothing is left behind, and no writer, maintainer or other analyst is
ever waited on. The views read the Parquet files, so every query sees the rows published
before it started.

What "read-only" covers, in three layers:
- DuckDB's read-only mode refuses CREATE, INSERT, UPDATE, DELETE, DROP and ALTER on the views'
  database; TEMP tables and views still work, in memory, for scratch results.
- The configuration is locked once opened (but for ALLOWED_CONFIGS), so no SET or CALL can
  point profiling output, query logs or log storage at a file.
- Only statement types that cannot write a file run (ALLOWED_STATEMENTS, by DuckDB's own
  parser): COPY ... TO, EXPORT DATABASE, ATTACH, PREPARE and EXPLAIN ANALYZE of any of those are
  refused before anything runs. `COPY ... TO` could otherwise publish a Parquet file into
  `logs.dir` that every view would count.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from segment_sync.interruptions import reraise_interruption
from segment_sync.logs.layout import ensure_layout
from segment_sync.logs.missing import no_logs_folder
from segment_sync.logs.object_store import is_object_store, s3_logs
from segment_sync.logs.schema import TABLES
from segment_sync.logs.vanished import retry_vanished
from segment_sync.logs.views import view_sql

if TYPE_CHECKING:
    from segment_sync.logs.damaged import UnreadableLogFile

VIEWS = (*TABLES, "daily_summary")
ST = duckdb.StatementType
# Statement types that write nowhere but the in-memory TEMP catalog (the views' database is
# read-only); EXPLAIN and PRAGMA are checked further (see _refusal).
ALLOWED_STATEMENTS = frozenset(
    {ST.SELECT, ST.EXPLAIN, ST.PRAGMA, ST.CREATE, ST.INSERT, ST.UPDATE, ST.DELETE, ST.DROP,
     ST.ALTER, ST.MERGE_INTO, ST.SET, ST.VARIABLE_SET, ST.CALL, ST.TRANSACTION, ST.LOAD,
     ST.ANALYZE, ST.VACUUM, ST.EXECUTE}
)  # fmt: skip
WHY_REFUSED = {
    ST.COPY: "COPY writes a file or a table",
    ST.EXPORT: "EXPORT DATABASE writes files",
    ST.COPY_DATABASE: "COPY FROM DATABASE writes a database",
    ST.ATTACH: "ATTACH opens a database that could be written",
    ST.PREPARE: "a prepared statement is not checked (pass parameters from Python instead)",
}
ALLOWED_CONFIGS = ("threads", "memory_limit", "TimeZone", "enable_progress_bar")
SAVE_HINT = (
    "to save a result, use `segment-sync logs sql --format csv > file.csv` "
    "or a DataFrame's to_csv/to_parquet"
)
_DATABASE_NAME = "segment_sync"
_LEADING_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_EXPLAIN = re.compile(r"explain\s+(?:\([^)]*\)\s*)?(?P<analyze>analy[sz]e\s+)?", re.IGNORECASE)
_PRAGMA = re.compile(r"pragma\s+(?!(?:copy|import)_database\b)", re.IGNORECASE)


class NoLogsError(FileNotFoundError):
    """`logs.dir` does not exist yet: no run has written a log."""


class LogsSQLError(ValueError):
    """SQL the logs cannot run, on one line: DuckDB's message, or why a statement is refused."""


def require_logs_dir(logs_dir: Path | str) -> Path:
    """`logs_dir` as an absolute path; NoLogsError (never creating it) if it does not exist."""
    path = Path(logs_dir).resolve()
    if not path.is_dir():
        raise NoLogsError(no_logs_folder(path))
    return path


def open_read_only(logs_dir: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a private database holding the analysts' views (UTC times)."""
    if is_object_store(logs_dir):  # views over S3 live in the connection: see s3_views.py
        from segment_sync.logs.s3_views import register_views, require_bucket

        logs = s3_logs(logs_dir)
        try:
            require_bucket(logs)
        except OSError as exc:
            raise NoLogsError(str(exc)) from None
        root: Path | str = logs.url.split("?")[0]
        statements: list[str] = []
    else:
        root = require_logs_dir(logs_dir)
        # Writes only if a schema file is missing or outdated; on a read-only mount the writers
        # keep them current, and a view that cannot read its files says so when queried.
        with contextlib.suppress(OSError):
            ensure_layout(root)
        statements = view_sql(root)
    folder = tempfile.mkdtemp(prefix="segment-sync-logs-")
    path = os.path.join(folder, f"{_DATABASE_NAME}.duckdb")
    try:
        with duckdb.connect(path) as con:
            for statement in statements:  # binding a view reads every file's footer
                retry_vanished(lambda statement=statement: con.execute(statement))
        con = duckdb.connect(path, read_only=True)
        if is_object_store(logs_dir):
            register_views(con, logs)
    except duckdb.Error as exc:
        reraise_interruption(exc)
        unreadable = damaged_file_behind(exc, logs_dir)  # binding read a damaged footer
        if unreadable is not None:
            raise LogsSQLError(str(unreadable)) from None
        raise LogsSQLError(f"cannot open the log views over {root}: {one_line(exc)}") from None
    finally:
        for leftover in (path, f"{path}.wal"):
            Path(leftover).unlink(missing_ok=True)  # an open connection keeps its file
        os.rmdir(folder)
    settings = ", ".join(f"'{name}'" for name in ALLOWED_CONFIGS)
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET allow_persistent_secrets = false")  # they would be written to ~/.duckdb
    con.execute(f"SET allowed_configs = [{settings}]")
    con.execute("SET lock_configuration = true")
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, logs_dir: Path | str) -> None:
    """Let `con` see the files published since it opened: a no-op for a local logs.dir (its
    views read the folder at each query), a new listing for logs on S3."""
    if is_object_store(logs_dir):
        from segment_sync.logs.s3_views import refresh

        refresh(con, s3_logs(logs_dir))


def refuse_writes(sql: str) -> None:
    """LogsSQLError for unreadable SQL or a statement that could write a file or a database."""
    statements = _parse(sql)
    if not statements:
        raise LogsSQLError("no SQL statement given; e.g. SELECT * FROM daily_summary")
    for statement in statements:
        why = _refusal(statement)
        if why:
            raise LogsSQLError(f"refused: the logs are read-only and {why}; {SAVE_HINT}")


def _parse(sql: str) -> list:
    """DuckDB's statements of `sql`; LogsSQLError with the parser's message."""
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LogsSQLError(one_line(exc)) from None


def _refusal(statement: duckdb.Statement) -> str | None:
    """Why `statement` may not run, or None."""
    kind = statement.type
    if kind not in ALLOWED_STATEMENTS:
        return WHY_REFUSED.get(kind, f"{kind.name} statements are not allowed")
    text = _LEADING_COMMENTS.sub("", statement.query, count=1)
    if kind == ST.PRAGMA and not _PRAGMA.match(text):
        # COPY FROM DATABASE and IMPORT DATABASE parse as PRAGMA
        return "COPY FROM DATABASE and IMPORT DATABASE write or run files"
    if kind == ST.EXPLAIN:
        explain = _EXPLAIN.match(text)
        if explain is None:
            return "this EXPLAIN cannot be checked; write EXPLAIN [ANALYZE] <query>"
        if explain.group("analyze"):  # runs the statement it explains
            for inner in _parse(text[explain.end() :]):
                why = _refusal(inner)
                if why:
                    return why
    return None


def run_sql(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    logs_dir: Path | str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Run `sql` (every statement; the last one's result is returned) on `con`, read-only.

    LogsSQLError on one line for any error (see `sql_error`); nothing is written.
    """
    refuse_writes(sql)
    try:
        return retry_vanished(
            lambda: con.execute(sql, params) if params is not None else con.execute(sql)
        )
    except duckdb.Error as exc:
        reraise_interruption(exc)
        raise sql_error(exc, logs_dir) from None


# What a statement's own text causes: no log file is to blame, so none is looked for.
_SQL_MISTAKES = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.NotImplementedException,
    duckdb.PermissionException,
)


# DuckDB's words for a Parquet file it cannot decode, when they name no file (a summary is read
# through a glob): only then is every log file checked, which reads them all. Thrift's own errors
# ("don't know what type", "Out of buffer") reach Python as a plain duckdb.Error.
_UNNAMED_DAMAGE = re.compile(
    r"thrift|TProtocol|parquet|magic bytes|corrupt|decompress|don't know what type|out of buffer",
    re.I,
)
# A quoted part of DuckDB's words: a file it names, or a value of the user's (a body, a pattern);
# not the apostrophes of "don't know what type".
_QUOTED = re.compile(r""""([^"]*)"|(?<!\w)'([^']*)'(?!\w)""")


def damaged_file_behind(exc: duckdb.Error, logs_dir: Path | str | None) -> UnreadableLogFile | None:
    """The damaged log file (data file or summary) behind a failed statement over a local
    `logs_dir`, naming it and the fix; None if none is to blame."""
    if logs_dir is None or is_object_store(logs_dir) or isinstance(exc, _SQL_MISTAKES):
        return None
    from segment_sync.logs.damaged import explain

    text = str(exc)
    quoted = [double or single for double, single in _QUOTED.findall(text)]
    if any(os.sep in part or ".parquet" in part for part in quoted):
        # DuckDB named the file: only a log file that cannot be read now is to blame, not the
        # user's own (read_parquet('mine.parquet')) nor one a merge deleted meanwhile.
        return explain(exc, inside=Path(logs_dir).resolve())
    own_words = _QUOTED.sub("", text)  # not a value of the user's that says "corrupt"
    if type(exc) is not duckdb.Error and not _UNNAMED_DAMAGE.search(own_words):
        return None
    return explain(exc, logs_dir)


def sql_error(exc: duckdb.Error, logs_dir: Path | str | None = None) -> LogsSQLError:
    """A failed statement on one line: the damaged log file behind it and the fix, which
    DuckDB's words ("TProtocolException: Invalid data") do not name; else DuckDB's message."""
    unreadable = damaged_file_behind(exc, logs_dir)
    return LogsSQLError(str(unreadable) if unreadable is not None else one_line(exc))


def one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without the multi-line `LINE 1: ...` excerpt, plus a hint for the usual
    mistakes (a write, an unknown view)."""
    text = str(exc).split("\n\nLINE ", 1)[0]
    message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if "read-only mode" in message:
        message += " (the logs are read-only; CREATE TEMP TABLE or TEMP VIEW for scratch results)"
    elif "configuration has been locked" in message:
        message += (
            " (the logs open read-only, with their settings locked; these can change: "
            f"{', '.join(ALLOWED_CONFIGS)})"
        )
    elif isinstance(exc, duckdb.CatalogException) and "does not exist" in message:
        message += f" (the log views: {', '.join(VIEWS)})"
    return message
