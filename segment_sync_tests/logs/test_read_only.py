"""The read-only boundary of `logs sql` and the logbook: no statement writes, every error is one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.logs.read_only import (
    VIEWS,
    LogsSQLError,
    NoLogsError,
    open_read_only,
    run_sql,
)
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import ensure_analytics_db

T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
# Names a statement can use unquoted: not one of DuckDB's reserved words ("as", "do", "to"...),
# which fail to parse before the read-only check is reached.
RESERVED = {
    row[0]
    for row in duckdb.sql(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
    ).fetchall()
}
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in RESERVED)
FILE_TARGETS = st.sampled_from(
    [
        "outbound_log/date=2026-11-28/injected.parquet",  # a file every view would count
        "injected.csv",
        "segment_sync.duckdb",
    ]
)
# Statements that would change the logs or write beside them; `{dir}` is the logs directory.
WRITES = st.one_of(
    NAMES.map(lambda n: f"CREATE TABLE {n} AS SELECT 1 AS x"),
    NAMES.map(lambda n: f"CREATE OR REPLACE VIEW {n} AS SELECT 1 AS x"),
    st.sampled_from(VIEWS).map(lambda v: f"CREATE OR REPLACE VIEW {v} AS SELECT 1 AS x"),
    st.sampled_from(VIEWS).map(lambda v: f"DROP VIEW {v}"),
    st.sampled_from(VIEWS).map(lambda v: f"ALTER VIEW {v} RENAME TO renamed"),
    NAMES.map(lambda n: f"CREATE SCHEMA {n}"),
    NAMES.map(lambda n: f"CREATE SEQUENCE {n}"),
    NAMES.map(lambda n: f"CREATE MACRO {n}(a) AS a + 1"),
    st.builds(
        lambda v, target: f"COPY (SELECT * FROM {v}) TO '{{dir}}/{target}'",
        st.sampled_from(VIEWS),
        FILE_TARGETS,
    ),
    FILE_TARGETS.map(lambda target: f"COPY outbound_log TO '{{dir}}/{target}' (FORMAT parquet)"),
    NAMES.map(lambda n: f"EXPORT DATABASE '{{dir}}/{n}'"),
    NAMES.map(lambda n: f"ATTACH '{{dir}}/{n}.duckdb' AS {n}"),
    NAMES.map(lambda n: f"IMPORT DATABASE '{{dir}}/{n}'"),
    st.just("COPY FROM DATABASE segment_sync TO temp"),
    FILE_TARGETS.map(lambda target: f"PREPARE p AS COPY (SELECT 1) TO '{{dir}}/{target}'"),
    FILE_TARGETS.map(lambda target: f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{{dir}}/{target}'"),
    # settings that would make DuckDB write files of its own
    FILE_TARGETS.map(lambda target: f"SET profiling_output = '{{dir}}/{target}'"),
    FILE_TARGETS.map(lambda target: f"SET log_query_path = '{{dir}}/{target}'"),
    FILE_TARGETS.map(lambda target: f"CALL enable_logging(storage_path = '{{dir}}/{target}')"),
    st.just("PRAGMA enable_profiling = 'json'"),
    st.just("SET lock_configuration = false"),
)


def outbound(identifier: str, minutes: int, status_code: int = 200) -> dict:
    return {
        "timestamp": T0 + timedelta(minutes=minutes),
        "customer_id": "c-1",
        "event_type": "track",
        "status_code": status_code,
        "identifier": identifier,
    }


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    """Three outbound requests, and the analysts' shared file as a run leaves it."""
    directory = tmp_path / "logs"
    LogWriter(directory).write(
        "outbound_log", [outbound("r-1", 0), outbound("r-2", 1, 503), outbound("r-3", 2)]
    )
    ensure_analytics_db(directory)
    return directory


def snapshot(directory: Path) -> dict[str, int]:
    """Every file under `directory` and its size."""
    return {
        str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*") if p.is_file()
    }


def vary(statement: str, *, upper: bool, after_a_read: bool, comment: bool) -> str:
    """The same statement as a user might type it: case, a leading comment, behind a SELECT."""
    if upper:  # keywords and names, not the quoted paths
        parts = statement.split("'")
        statement = "'".join(p if i % 2 else p.upper() for i, p in enumerate(parts))
    text = statement
    if comment:
        text = f"/* the analysts' scratch */ {text}"
    return f"SELECT 1;\n{text}" if after_a_read else text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(WRITES, st.booleans(), st.booleans(), st.booleans())
def test_every_statement_that_would_write_is_refused_and_nothing_changes(
    logs_dir: Path, statement: str, upper: bool, after_a_read: bool, comment: bool
) -> None:
    before = snapshot(logs_dir)
    sql = vary(statement, upper=upper, after_a_read=after_a_read, comment=comment)
    with open_read_only(logs_dir) as con:
        with pytest.raises(LogsSQLError) as refused:
            run_sql(con, sql.format(dir=logs_dir.as_posix()))
        assert "\n" not in str(refused.value)
        assert "read-only" in str(refused.value)
        assert con.execute("SELECT count(*) FROM outbound_log").fetchone() == (3,)
    assert snapshot(logs_dir) == before


@pytest.fixture(scope="module")
def shared_connection(tmp_path_factory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One read-only session over three outbound requests, for many generated queries."""
    directory = tmp_path_factory.mktemp("fuzz") / "logs"
    LogWriter(directory).write("outbound_log", [outbound("r-1", 0), outbound("r-2", 1, 503)])
    with open_read_only(directory) as con:
        yield con


SQL_WORDS = st.sampled_from(
    ["SELECT", "FROM", "WHERE", "outbound_log", "daily_summary", "status_code", "*", ",", "(",
     ")", "'", '"', "=", "1", "nope", ";", "GROUP BY", "::INT", "-- c\n", "/*"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(SQL_WORDS, max_size=12).map(" ".join)))
def test_any_text_runs_or_fails_with_one_line_naming_the_problem(
    shared_connection: duckdb.DuckDBPyConnection, text: str
) -> None:
    """Garbage, half-typed SQL, unknown names: a LogsSQLError on one line, never another error."""
    try:
        cursor = run_sql(shared_connection, text)
        if cursor.description:
            cursor.fetchall()
    except LogsSQLError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message


def test_scratch_temp_views_and_tables_work_and_leave_no_file(logs_dir: Path) -> None:
    before = snapshot(logs_dir)
    with open_read_only(logs_dir) as con:
        run_sql(
            con, "CREATE TEMP VIEW failed AS SELECT * FROM outbound_log WHERE status_code >= 500"
        )
        run_sql(con, "CREATE TEMP TABLE ids AS SELECT identifier FROM failed")
        assert run_sql(con, "SELECT * FROM ids").fetchall() == [("r-2",)]
    assert snapshot(logs_dir) == before


def test_an_unknown_view_names_the_log_views(logs_dir: Path) -> None:
    with open_read_only(logs_dir) as con, pytest.raises(LogsSQLError) as error:
        run_sql(con, "SELECT * FROM outbound_logs")
    assert str(error.value).startswith(
        "Catalog Error: Table with name outbound_logs does not exist"
    )
    assert "(the log views: outbound_log, outbound_messages, inbound_log" in str(error.value)


def test_a_missing_logs_dir_is_reported_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(NoLogsError, match="no logs yet: .*absent.* does not exist"):
        open_read_only(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


def test_opening_leaves_no_file_behind(logs_dir: Path, tmp_path: Path, monkeypatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    with open_read_only(logs_dir) as con:
        assert con.execute("SELECT count(*) FROM outbound_log").fetchone() == (3,)
        assert list(scratch.iterdir()) == []  # unlinked while open
    assert list(scratch.iterdir()) == []


HOLD_READ_WRITE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # read-write, as an analyst's own DuckDB session may
con.execute("SELECT count(*) FROM outbound_log").fetchone()
print("holding", flush=True)
sys.stdin.read()
"""


def test_opens_while_an_analyst_holds_the_shared_file_read_write(logs_dir: Path) -> None:
    """DuckDB refuses every other process the shared file then; the private views still open."""
    shared = logs_dir / "segment_sync.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_WRITE, str(shared)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(shared), read_only=True)  # what opening the shared file would do
        with open_read_only(logs_dir) as con:
            assert run_sql(con, "SELECT count(*) FROM outbound_log").fetchone() == (3,)
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
