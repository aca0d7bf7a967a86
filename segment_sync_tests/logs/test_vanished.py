"""A query that meets a log file a merge deleted is run again; other errors are not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from segment_sync.logs.vanished import ATTEMPTS, retry_vanished


def vanished_error(tmp_path: Path) -> duckdb.IOException:
    """DuckDB's error, word for word, for a listed file a merge deleted before it was opened
    (taken from a real race: a reader beside a merging writer; it cannot be timed in a test)."""
    path = tmp_path / "outbound_log" / "date=2026-12-06" / "20261206T184326482157Z-f9be.parquet"
    return duckdb.IOException(f'IO Error: Cannot open file "{path}": No such file or directory')


def test_a_query_that_met_a_merged_away_file_is_run_again(tmp_path: Path) -> None:
    error, calls = vanished_error(tmp_path), []

    def query() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "rows"

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
