"""Precomputed day summaries: daily_summary reads them only while they describe the day's rows,
and its figures are always those of aggregating every row (the view without summaries)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segment_sync.logs.damaged import explain, unreadable_files
from segment_sync.logs.layout import (
    SCHEMA_PARTITION,
    SUMMARY_SUFFIX,
    data_files,
    ensure_layout,
    partition_dir,
    summary_path,
    write_parquet,
)
from segment_sync.logs.maintenance import apply_retention, compact
from segment_sync.logs.request_figures import figures_fingerprint, requests_sql
from segment_sync.logs.schema import REQUEST_SUMMARY
from segment_sync.logs.store import LogWriter
from segment_sync.logs.summaries import write_summary
from segment_sync.logs.views import DAILY_SUMMARY_SQL, connect
from segment_sync_tests.disks import damage_file

DAY1 = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 4


def requests(day: datetime, n: int, seed: int) -> list[dict]:
    """`n` outbound_log rows of one day: both types, failures, unanswered requests."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        status = rng.choice([200, 200, 200, 429, 500, None])
        rows.append(
            {
                "timestamp": day + timedelta(seconds=rng.randrange(86_400)),
                "customer_ids": [f"c-{rng.randrange(50)}"],
                "event_type": rng.choice(["track", "identify"]),
                "status_code": status,
                "response_time_s": round(rng.lognormvariate(-1.7, 0.6), 6),
                "error": None if status == 200 else f"HTTP {status}",
                "identifier": f"r-{seed}-{i}",
            }
        )
    return rows


def write_days(logs_dir: Path, files_per_day: int = 2) -> None:
    """DAYS days of requests, each in `files_per_day` files."""
    writer = LogWriter(logs_dir)
    for d in range(DAYS):
        for f in range(files_per_day):
            writer.write("outbound_log", requests(DAY1 + timedelta(days=d), 40, 100 * d + f))


def summary(logs_dir: Path) -> list[tuple]:
    """Every row of daily_summary."""
    with connect(logs_dir) as con:
        return con.execute("SELECT * FROM daily_summary").fetchall()


def aggregated(logs_dir: Path) -> list[tuple]:
    """daily_summary as every row aggregated: the view without summaries (as before them)."""
    with connect(logs_dir) as con:
        con.execute(DAILY_SUMMARY_SQL.replace("VIEW daily_summary", "TEMP VIEW aggregated"))
        return con.execute("SELECT * FROM aggregated").fetchall()


def day_dir(logs_dir: Path, d: int) -> Path:
    return partition_dir(logs_dir, "outbound_log", (DAY1 + timedelta(days=d)).date())


def tamper(summary_file: Path) -> None:
    """Rewrite a summary with 1,000,000 requests per type: figures no day's rows give."""
    table = pq.read_table(summary_file)
    table = table.set_column(1, "requests", pa.array([1_000_000] * table.num_rows, pa.int64()))
    pq.write_table(table, summary_file)


def test_compaction_writes_a_summary_for_each_day_left_as_one_file(tmp_path: Path) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    for d in range(DAYS):
        (only,) = data_files(day_dir(tmp_path, d))
        assert summary_path(only).exists()


def test_daily_summary_with_summaries_equals_aggregating_every_row(tmp_path: Path) -> None:
    write_days(tmp_path)
    before = summary(tmp_path)
    compact(tmp_path, "outbound_log")
    assert summary(tmp_path) == before == aggregated(tmp_path)
    assert {row[0] for row in before} == {(DAY1 + timedelta(days=d)).date() for d in range(DAYS)}


def test_daily_summary_reads_the_summary_of_a_day_left_as_its_one_file(tmp_path: Path) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    tamper(summary_path(only))
    requests_of = {(row[0], row[2]): row[3] for row in summary(tmp_path)}
    assert requests_of[(DAY1.date(), "track")] == 1_000_000  # what the summary says
    assert requests_of[(DAY1.date() + timedelta(days=1), "track")] < 1_000


def test_a_late_row_makes_its_day_aggregated_again_until_compaction(tmp_path: Path) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    tamper(summary_path(only))  # were it read, the figures would show it
    LogWriter(tmp_path).write("outbound_log", requests(DAY1, 3, seed=7))  # a late row
    assert summary(tmp_path) == aggregated(tmp_path)
    compact(tmp_path, "outbound_log")  # merged: a new file, a new summary, the old one gone
    assert summary(tmp_path) == aggregated(tmp_path)
    assert not summary_path(only).exists()
    (merged,) = data_files(day_dir(tmp_path, 0))
    assert summary_path(merged).exists()


def test_retention_trimming_a_summarised_day_never_serves_its_old_figures(tmp_path: Path) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    apply_retention(tmp_path, "outbound_log", DAY1 + timedelta(days=1, hours=12))
    trimmed = summary(tmp_path)
    assert trimmed == aggregated(tmp_path)
    assert min(row[0] for row in trimmed) == DAY1.date() + timedelta(days=1)
    assert not day_dir(tmp_path, 0).exists()  # dropped whole, its summary too
    compact(tmp_path, "outbound_log")
    assert summary(tmp_path) == trimmed


def test_retention_keeps_the_typed_empty_summary(tmp_path: Path) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    apply_retention(tmp_path, "outbound_log", DAY1 + timedelta(days=DAYS + 1))
    schema_dir = tmp_path / "outbound_log" / SCHEMA_PARTITION
    assert (schema_dir / f"_schema{SUMMARY_SUFFIX}").exists()
    assert summary(tmp_path) == aggregated(tmp_path) == []


def test_a_file_written_before_a_column_existed_is_summarised_as_the_view_reads_it(
    tmp_path: Path,
) -> None:
    LogWriter(tmp_path)
    old = pa.table(  # no error, response_time_s or customer_ids columns yet
        {
            "timestamp": pa.array([DAY1, DAY1 + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
            "event_type": ["track", "track"],
            "status_code": pa.array([200, 500], pa.int32()),
        }
    )
    write_parquet(old, day_dir(tmp_path, 0))
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    assert summary_path(only).exists()
    assert summary(tmp_path) == aggregated(tmp_path)
    assert [row[3:9] for row in summary(tmp_path)] == [(2, 0, 0, 0, 0, 1)]


def test_a_summary_of_a_deleted_file_is_removed_by_compaction(tmp_path: Path) -> None:
    write_days(tmp_path, files_per_day=1)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 2))
    only.unlink()
    write_summary(data_files(day_dir(tmp_path, 3))[0])  # rewriting one is harmless
    compact(tmp_path, "outbound_log")
    assert not summary_path(only).exists()
    assert summary(tmp_path) == aggregated(tmp_path)


def test_summaries_are_right_for_many_days_of_random_requests(tmp_path: Path) -> None:
    rng = random.Random(5)
    writer = LogWriter(tmp_path)
    days = [date(2024, 5, 1) + timedelta(days=d) for d in range(12)]
    for k, day in enumerate(days):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for f in range(rng.randrange(1, 4)):
            writer.write("outbound_log", requests(start, rng.randrange(1, 60), 10 * k + f))
    compact(tmp_path, "outbound_log")
    late = datetime(days[3].year, days[3].month, days[3].day, tzinfo=UTC)
    writer.write("outbound_log", requests(late, 5, seed=999))  # day 3 live again
    assert summary(tmp_path) == aggregated(tmp_path)


def test_a_damaged_summary_is_named_by_the_log_check_and_rewritten_by_compaction(
    tmp_path: Path,
) -> None:
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    damage_file(summary_path(only), "truncated")

    assert [path for path, _ in unreadable_files(tmp_path)] == [summary_path(only)]
    with connect(tmp_path) as con, pytest.raises(duckdb.Error) as failed:
        con.execute("SELECT * FROM daily_summary").fetchall()
    assert explain(failed.value, tmp_path).path == summary_path(only)
    compact(tmp_path, "outbound_log")  # the hourly maintenance: a summary holds nothing of its own
    assert unreadable_files(tmp_path) == []
    assert summary(tmp_path) == aggregated(tmp_path)


def test_a_day_whose_summary_the_view_reads_no_rows_from_is_aggregated_from_its_rows(
    tmp_path: Path,
) -> None:
    """The view must decide that a day has its summary from the summaries it reads, not from a
    second listing: a summary listed by one and not by the other (compaction publishing it
    meanwhile: seen as a day with 0 requests in 9-12 of ~1,300 queries running beside
    compactions on main) left the day counted by neither half. Here the summary the listing
    finds gives the reading no rows."""
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    empty = pq.read_table(summary_path(only)).slice(0, 0)
    pq.write_table(empty, summary_path(only))
    assert summary(tmp_path) == aggregated(tmp_path)


def test_a_summary_other_code_made_is_never_read_and_compaction_replaces_it(
    tmp_path: Path,
) -> None:
    """An upgrade that counts requests differently leaves summaries of the old SQL: their days
    are aggregated from their rows, not served the old figures, until maintenance summarises."""
    write_days(tmp_path)
    compact(tmp_path, "outbound_log")
    (only,) = data_files(day_dir(tmp_path, 0))
    current = summary_path(only)
    tamper(current)  # were it read, the figures would show it
    before_fingerprints = only.with_name(only.name + ".summary")
    other_fingerprint = only.with_name(only.name + ".summary-0123456789ab")
    current.rename(before_fingerprints)
    other_fingerprint.write_bytes(before_fingerprints.read_bytes())
    assert summary(tmp_path) == aggregated(tmp_path)
    compact(tmp_path, "outbound_log")
    assert not before_fingerprints.exists() and not other_fingerprint.exists()
    assert current.exists()
    assert summary(tmp_path) == aggregated(tmp_path)


def test_the_summary_fingerprint_changes_with_the_figures_sql_and_the_summary_schema() -> None:
    fingerprint = figures_fingerprint(REQUEST_SUMMARY)
    assert f".summary-{fingerprint}" == SUMMARY_SUFFIX
    assert figures_fingerprint(REQUEST_SUMMARY) == fingerprint  # stable across processes
    errors_counted_otherwise = requests_sql("source").replace(">= 400", ">= 500")
    assert figures_fingerprint(REQUEST_SUMMARY, errors_counted_otherwise) != fingerprint
    assert figures_fingerprint(REQUEST_SUMMARY.remove(0)) != fingerprint


def test_this_codes_typed_empty_summary_is_made_beside_other_codes(tmp_path: Path) -> None:
    """Other code's typed empty summary stays (its views' glob needs it: test_summary_upgrade.py),
    through ensure_layout and maintenance; this code's views never read it."""
    ensure_layout(tmp_path)
    schema_dir = tmp_path / "outbound_log" / SCHEMA_PARTITION
    current = schema_dir / f"_schema{SUMMARY_SUFFIX}"
    old = schema_dir / "_schema.summary"
    current.rename(old)
    ensure_layout(tmp_path)
    compact(tmp_path, "outbound_log")
    assert current.exists() and old.exists()
    assert summary(tmp_path) == []
