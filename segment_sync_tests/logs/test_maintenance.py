"""Log maintenance: compaction keeps every row, retention removes exactly the old ones."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segment_sync.logs.layout import data_files, partition_dirs
from segment_sync.logs.maintenance import (
    CompactionResult,
    apply_retention,
    compact,
    maintenance_lock,
)
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect

DAY1 = datetime(2024, 3, 1, tzinfo=UTC)
CTX = multiprocessing.get_context("spawn")


def message(message_id: str, timestamp: datetime, **overrides: Any) -> dict[str, Any]:
    """An outbound_messages row with a few columns set."""
    row = {
        "timestamp": timestamp,
        "message_id": message_id,
        "outcome": "delivered",
        "customer_id": f"c-{message_id}",
        "source_id": len(message_id),
    }
    return {**row, **overrides}


def all_messages(logs_dir: Path) -> list[tuple]:
    """Every outbound_messages row, in a stable order."""
    with connect(logs_dir) as con:
        return con.execute("SELECT * FROM outbound_messages ORDER BY message_id").fetchall()


def file_count(logs_dir: Path, table: str = "outbound_messages") -> int:
    """Data files of a table across partitions."""
    return sum(len(data_files(p)) for p in partition_dirs(logs_dir, table))


def write_small_batches(logs_dir: Path, days: int = 2, batches: int = 5) -> None:
    """Several one-row-per-batch files in each of `days` partitions."""
    writer = LogWriter(logs_dir)
    for day in range(days):
        for batch in range(batches):
            stamp = DAY1 + timedelta(days=day, hours=batch)
            writer.write(
                "outbound_messages", [message(f"d{day}-b{batch}-{i}", stamp) for i in range(3)]
            )


def test_compaction_keeps_every_row_and_leaves_one_file_per_partition(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=2, batches=5)
    before = all_messages(tmp_path)

    result = compact(tmp_path, "outbound_messages")

    assert result == CompactionResult(files_before=10, files_after=2, rows=30)
    assert all_messages(tmp_path) == before
    assert file_count(tmp_path) == 2


def test_compaction_leaves_partitions_with_fewer_than_min_files_alone(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=1, batches=3)
    files = sorted(data_files(partition_dirs(tmp_path, "outbound_messages")[-1]))

    result = compact(tmp_path, "outbound_messages", min_files=4)

    assert result == CompactionResult(files_before=3, files_after=3, rows=0)
    assert sorted(data_files(files[0].parent)) == files


def test_compaction_of_single_files_is_refused_as_it_would_rewrite_every_day_each_hour(
    tmp_path: Path,
) -> None:
    write_small_batches(tmp_path, days=1, batches=1)
    (only,) = data_files(partition_dirs(tmp_path, "outbound_messages")[-1])

    with pytest.raises(ValueError, match="min_files must be at least 2, got 1"):
        compact(tmp_path, "outbound_messages", min_files=1)

    assert data_files(only.parent) == [only]


def test_compacting_again_changes_nothing(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=1, batches=3)
    compact(tmp_path, "outbound_messages")

    result = compact(tmp_path, "outbound_messages")

    assert result == CompactionResult(files_before=1, files_after=1, rows=0)


def test_compaction_merges_older_files_lacking_newer_columns(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=1, batches=2)
    old_schema = pa.schema([f for f in TABLES["outbound_messages"] if f.name != "size_bytes"])
    partition = partition_dirs(tmp_path, "outbound_messages")[-1]
    old = pa.Table.from_pylist([message("old-1", DAY1)], schema=old_schema)
    pq.write_table(old, partition / "20240301T000000000000Z-old.parquet")
    before = all_messages(tmp_path)

    compact(tmp_path, "outbound_messages")

    assert all_messages(tmp_path) == before
    assert file_count(tmp_path) == 1


def test_compaction_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=2, batches=3)

    compact(tmp_path, "outbound_messages")

    assert not list(tmp_path.rglob("*.tmp"))


def test_compaction_removes_temporary_files_abandoned_long_ago_but_not_fresh_ones(
    tmp_path: Path,
) -> None:
    write_small_batches(tmp_path, days=1, batches=1)
    partition = partition_dirs(tmp_path, "outbound_messages")[-1]
    abandoned, fresh = partition / ".abandoned.parquet.tmp", partition / ".fresh.parquet.tmp"
    abandoned.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))

    compact(tmp_path, "outbound_messages")

    assert (abandoned.exists(), fresh.exists()) == (False, True)


def writer_process(logs_dir: str, seconds: float, results: Any) -> None:
    """Write small batches into today's partition for `seconds`; report rows written."""
    try:
        writer = LogWriter(logs_dir)
        written = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = datetime.now(UTC)
            writer.write("outbound_messages", [message(f"w{written + i}", now) for i in range(10)])
            written += 10
        results.put(("ok", written))
    except Exception:
        results.put(("error", traceback.format_exc()))


def test_compaction_beside_a_writer_never_loses_or_duplicates_a_row(tmp_path: Path) -> None:
    LogWriter(tmp_path)
    results = CTX.Queue()
    writer = CTX.Process(target=writer_process, args=(str(tmp_path), 3.0, results))
    writer.start()
    try:
        compactions = 0
        while writer.is_alive() and compactions < 1000:
            compact(tmp_path, "outbound_messages")
            compactions += 1
            time.sleep(0.05)
        status, written = results.get(timeout=60)
    finally:
        writer.join(timeout=60)
        if writer.is_alive():
            writer.terminate()

    assert status == "ok", written
    assert compactions > 1
    with connect(tmp_path) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
        ).fetchone()
    assert (total, distinct) == (written, written)


def test_maintenance_of_one_table_waits_for_the_one_already_running(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=1, batches=3)
    finished = threading.Event()

    def run() -> None:
        compact(tmp_path, "outbound_messages")
        finished.set()

    with maintenance_lock(tmp_path, "outbound_messages"):
        thread = threading.Thread(target=run)
        thread.start()
        assert not finished.wait(0.5)
    thread.join(timeout=30)

    assert finished.is_set()
    assert file_count(tmp_path) == 1


def test_retention_removes_exactly_the_rows_older_than_the_cutoff(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    stamps = [DAY1 + timedelta(hours=h) for h in range(0, 72, 5)]  # three days, every 5 h
    for i, stamp in enumerate(stamps):
        writer.write("outbound_messages", [message(f"m{i:02d}", stamp)])
    cutoff = DAY1 + timedelta(days=1, hours=10)  # exactly the timestamp of one row (kept)
    expected = [row for row in all_messages(tmp_path) if row[0] >= cutoff]

    removed = apply_retention(tmp_path, "outbound_messages", cutoff)

    assert removed == sum(stamp < cutoff for stamp in stamps)
    assert all_messages(tmp_path) == expected


def test_retention_deletes_whole_partitions_before_the_cutoff_day(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=3, batches=2)

    apply_retention(tmp_path, "outbound_messages", DAY1 + timedelta(days=2))

    days = [p.name for p in partition_dirs(tmp_path, "outbound_messages") if data_files(p)]
    assert days == ["date=2024-03-03"]
    assert not (tmp_path / "outbound_messages" / "date=2024-03-01").exists()


def test_retention_rewrites_the_cutoff_day_keeping_its_later_rows(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.write(
        "outbound_messages", [message("early", DAY1), message("late", DAY1 + timedelta(hours=20))]
    )

    removed = apply_retention(tmp_path, "outbound_messages", DAY1 + timedelta(hours=12))

    assert removed == 1
    assert [row[1] for row in all_messages(tmp_path)] == ["late"]


def test_views_still_work_after_retention_removed_every_row(tmp_path: Path) -> None:
    write_small_batches(tmp_path, days=2, batches=2)

    removed = apply_retention(tmp_path, "outbound_messages", DAY1 + timedelta(days=30))

    assert removed == 12
    assert all_messages(tmp_path) == []


def test_retention_uses_sync_runs_start_time(tmp_path: Path) -> None:
    runs = [
        {"run_id": "old", "job": "outbound", "started_at": DAY1},
        {"run_id": "new", "job": "outbound", "started_at": DAY1 + timedelta(days=2)},
    ]
    LogWriter(tmp_path).write("sync_runs", runs)

    removed = apply_retention(tmp_path, "sync_runs", DAY1 + timedelta(days=1))

    with connect(tmp_path) as con:
        assert con.execute("SELECT run_id FROM sync_runs").fetchall() == [("new",)]
    assert removed == 1


def test_retention_rejects_a_cutoff_without_timezone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_retention(tmp_path, "outbound_messages", datetime(2024, 3, 1))
