"""`logs sql` and the Logbook blame a damaged log file only when one is to blame: never for the
user's own files outside logs.dir, never for a file that reads whole, and not after reading
every log file for a mistake in the SQL."""

from __future__ import annotations

import duckdb
import pytest

from segment_sync.logs import damaged, read_only
from segment_sync.logs.logbook import Logbook
from segment_sync.logs.read_only import LogsSQLError
from segment_sync_tests.cli.test_logs_check import logs_with_files, one_line_naming, sql
from segment_sync_tests.disks import damage_file


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """Every time every log file is read to find the damaged one."""
    seen: list[str] = []
    real = damaged.unreadable_files

    def counting(logs_dir, *, deep=False):
        seen.append(str(logs_dir))
        return real(logs_dir, deep=deep)

    monkeypatch.setattr(damaged, "unreadable_files", counting)
    return seen


def test_the_users_own_damaged_parquet_file_is_not_called_a_log_file(tmp_path):
    settings, _, _ = logs_with_files(tmp_path)
    mine = tmp_path / "mine.parquet"
    duckdb.sql(f"COPY (SELECT range AS n FROM range(10)) TO '{mine}'")
    damage_file(mine, "truncated")

    result = sql(settings, f"SELECT * FROM read_parquet('{mine}')")

    assert result.exit_code == 1
    assert "log file" not in result.output and "quarantine" not in result.output, result.output


def test_a_missing_file_of_the_users_is_duckdbs_words_not_a_damaged_log_file(tmp_path, scans):
    settings, _, files = logs_with_files(tmp_path)
    damage_file(files[2], "scrambled-pages")  # a query of the other rows never meets it

    result = sql(settings, f"SELECT * FROM read_parquet('{tmp_path / 'nope.parquet'}')")

    assert result.exit_code == 1
    assert "No files found" in result.output and "cannot be read" not in result.output, (
        result.output
    )
    assert scans == []  # no need to read every log file


def test_a_file_that_is_not_parquet_is_duckdbs_words_without_reading_every_log(tmp_path, scans):
    settings, _, _ = logs_with_files(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")

    result = sql(settings, f"SELECT * FROM read_parquet('{tmp_path / 'notes.txt'}')")

    assert result.exit_code == 1 and "too small to be a Parquet file" in result.output, (
        result.output
    )
    assert scans == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT strptime(request_body, '%Y') FROM outbound_log",  # a body holding 'parquet'
        "SELECT json_extract(request_body, '$.a') FROM outbound_log",  # malformed JSON body
    ],
)
def test_a_mistake_over_a_value_naming_parquet_reads_no_log_file(tmp_path, scans, query):
    settings, logs_dir, _ = logs_with_files(tmp_path)
    from segment_sync.logs.store import LogWriter
    from segment_sync_tests.cli.test_logs_commands import outbound_row

    LogWriter(logs_dir).write(
        "outbound_log", [outbound_row("odd", 1, request_body="{corrupt parquet")]
    )

    result = sql(settings, query)

    assert result.exit_code == 1 and "Invalid Input Error" in result.output, result.output
    assert scans == []


@pytest.mark.parametrize(
    "error",
    [
        duckdb.Error("don't know what type: \x0f"),  # seen with random page damage
        duckdb.Error("Out of buffer"),
        duckdb.InvalidInputException("Couldn't deserialize thrift: don't know what type: "),
    ],
)
def test_thrifts_own_words_for_a_damaged_page_still_name_the_file(tmp_path, error):
    """DuckDB's words for a damaged page that name no file."""
    _, logs_dir, files = logs_with_files(tmp_path)
    damage_file(files[2], "scrambled-pages")

    named = read_only.damaged_file_behind(error, logs_dir)

    assert named is not None and named.path == files[2]


def test_logs_sql_select_star_over_page_damage_names_the_file(tmp_path):
    """Seen: `overwrite` damage in a data page failed with "don't know what type" (no file)."""
    settings, _, files = logs_with_files(tmp_path)
    data = bytearray(files[2].read_bytes())
    at = len(data) // 3
    for offset in range(at, at + 40):
        data[offset] ^= 0xFF
    files[2].write_bytes(bytes(data))

    result = sql(settings, "SELECT * FROM outbound_log")

    assert result.exit_code == 0 or one_line_naming(result, files[2]), result.output


def test_sql_chunks_closes_its_cursor_on_an_early_break_and_an_empty_result(tmp_path):
    _, logs_dir, _ = logs_with_files(tmp_path)
    book = Logbook(logs_dir)
    chunks = book.sql_chunks("SELECT * FROM range(100000)", chunk_rows=2048)
    first = next(chunks)
    chunks.close()
    assert len(first) == 2048
    assert list(book.sql_chunks("SELECT * FROM range(0)")) == []
    assert list(book.sql_chunks("SET threads = 1")) == []
    with pytest.raises(LogsSQLError, match="Division by zero"):
        list(book.sql_chunks("SELECT 1 // (range - 5000) FROM range(10000)", chunk_rows=2048))
    assert book.sql("SELECT 1 AS one")["one"].tolist() == [1]


def test_a_log_file_a_merge_deleted_is_duckdbs_words_not_another_damaged_file(tmp_path, scans):
    """After its retries, a query that met a file a merge deleted says so; the damaged file
    elsewhere is not what failed it, and no log file needs reading to say so."""
    _, logs_dir, files = logs_with_files(tmp_path)
    damage_file(files[2], "scrambled-pages")
    gone = files[0].with_name("20260101T000000000000Z-merged-away.parquet")
    error = duckdb.IOException(f'IO Error: Cannot open file "{gone}": No such file or directory')

    assert read_only.damaged_file_behind(error, logs_dir) is None
    assert scans == []
