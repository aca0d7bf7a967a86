"""A query that meets a log file a merge deleted is run again; other errors are not."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import segment_sync
from segment_sync.logs.damaged import explain
from segment_sync.logs.vanished import (
    ATTEMPTS,
    fetch_all,
    fetch_one,
    is_vanished_file,
    retry_vanished,
)


def vanished_error(tmp_path: Path) -> duckdb.IOException:
    """DuckDB's error, word for word, for a listed file a merge deleted before it was opened
    (taken from a real race: a reader beside a merging writer; it cannot be timed in a test)."""
    path = tmp_path / "outbound_log" / "date=2026-12-06" / "20261206T184326482157Z-f9be.parquet"
    return duckdb.IOException(f'IO Error: Cannot open file "{path}": No such file or directory')


def _failing_once(error: Exception) -> tuple[Callable[[], str], list[int]]:
    """A query that raises `error` the first time and returns "rows" after; its calls."""
    calls: list[int] = []

    def query() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "rows"

    return query, calls


def test_a_query_that_met_a_merged_away_file_is_run_again(tmp_path: Path) -> None:
    query, calls = _failing_once(vanished_error(tmp_path))
    assert retry_vanished(query) == "rows"
    assert len(calls) == 2


def test_it_gives_up_after_a_few_attempts(tmp_path: Path) -> None:
    error, calls = vanished_error(tmp_path), []

    def query() -> None:
        calls.append(1)
        raise error

    with pytest.raises(duckdb.IOException):
        retry_vanished(query)
    assert len(calls) == ATTEMPTS


def test_other_io_errors_are_not_retried(tmp_path: Path) -> None:
    calls = []

    def query() -> None:
        calls.append(1)
        duckdb.connect().execute(f"SELECT * FROM read_csv('{tmp_path}/none.csv')")

    with pytest.raises(duckdb.IOException):
        retry_vanished(query)
    assert len(calls) == 1


def test_fetch_one_reruns_a_query_that_met_a_merged_away_file(tmp_path: Path) -> None:
    error, con = vanished_error(tmp_path), duckdb.connect()

    class MergedAwayOnce:
        """A real connection whose first query meets a file a merge deleted (the race)."""

        def __init__(self) -> None:
            self.calls = 0

        def execute(self, sql: str, params=None):
            self.calls += 1
            if self.calls == 1:
                raise error
            return con.execute(sql, params)

    race = MergedAwayOnce()
    assert fetch_one(race, "SELECT ? + 1", [41]) == (42,)
    assert fetch_all(race, "SELECT * FROM range(3)") == [(0,), (1,), (2,)]
    assert race.calls == 3


def test_the_sync_reads_its_logs_only_through_the_rerunning_helpers() -> None:
    """Every module that opens the log views queries them through vanished.py (a query in a
    lambda given to retry_vanished, or fetch_one/fetch_all), so a merge at another run's end
    never fails a run's counts, report, checks, reconciliation or replay. SET statements read no
    file; on S3 (s3_views.py) a vanished object is a different error, handled there."""
    root = Path(segment_sync.__file__).parent
    exempt = {"views.py", "vanished.py", "s3_views.py"}
    readers = [
        p
        for p in root.rglob("*.py")
        if p.name not in exempt and "segment_sync.logs.views import" in p.read_text()
    ]
    assert len(readers) >= 5, readers  # queries, report, reconcile, replay, read_only, ...
    direct = [
        f"{path.relative_to(root)}:{call.lineno}"
        for path in readers
        for call in _unguarded_executes(ast.parse(path.read_text()))
    ]
    assert direct == [], f"log queries run without a rerun on a merged-away file: {direct}"


def _unguarded_executes(tree: ast.Module) -> list[ast.Call]:
    """`.execute(...)` calls outside any lambda, except `SET ...` statements."""
    in_lambdas = {
        id(node) for fn in ast.walk(tree) if isinstance(fn, ast.Lambda) for node in ast.walk(fn)
    }
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "execute"
            and id(node) not in in_lambdas
        ):
            continue
        first = node.args[0] if node.args else None
        text = ast.unparse(first) if first is not None else ""
        if text.lstrip("f'\"").startswith("SET "):
            continue
        found.append(node)
    return found


def test_an_object_compacted_away_on_s3_counts_as_a_merged_away_file() -> None:
    """DuckDB's error, word for word, for an S3 object a compaction deleted after the listing
    (seen in logs/test_s3_concurrent.py)."""
    error = duckdb.InvalidInputException(
        "Invalid Input Error: reading the stream registered as 'outbound_messages' failed: "
        "IOError: Path does not exist 'logs-629faf19dea9/segment-sync/logs/outbound_messages/"
        "date=2026-12-05/20261206T194524884324Z-c31b.parquet'. Detail: [errno 2] No such file "
        "or directory"
    )
    query, calls = _failing_once(error)
    assert is_vanished_file(error)
    assert retry_vanished(query) == "rows"


def _gone_when_listed_again(tmp_path: Path) -> duckdb.IOException:
    """DuckDB's own error for a file named by path that is gone when DuckDB looks for it."""
    path = tmp_path / "20261206T222139921358Z-0d20.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet)")
    path.unlink()  # a merge deleted it
    with pytest.raises(duckdb.IOException) as raised:
        duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')")
    return raised.value


def test_a_file_gone_when_duckdb_lists_it_again_counts_as_a_merged_away_file(
    tmp_path: Path,
) -> None:
    """Seen in antavo/test_shared_pacer.py: two ingests sharing a logs folder, one merging at its
    run's end while the other bound a view; the run failed, blaming a file that was fine."""
    error = _gone_when_listed_again(tmp_path)
    assert "No files found that match the pattern" in str(error)
    query, _ = _failing_once(error)
    assert is_vanished_file(error)
    assert retry_vanished(query) == "rows"


def test_a_readable_file_named_in_an_error_is_not_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "20261206T222139921358Z-0d20.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet)")
    error = duckdb.IOException(f'IO Error: No files found that match the pattern "{path}"')
    assert explain(error) is None  # it reads whole: DuckDB met it mid-publish or mid-merge
