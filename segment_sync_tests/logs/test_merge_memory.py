"""A merge holds a bounded number of bytes whatever the size of its input files (issue 26).

Measured by Arrow's own accounting: every buffer the Parquet reader and writer allocate goes
through the default memory pool, so a proxy pool set as the default for the merge records the
most bytes held at once (no timing, no RSS sampling)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segment_sync.logs import maintenance, merge
from segment_sync.logs.layout import data_files, partition_dir
from segment_sync.logs.store import LogWriter

NOW = datetime.now(UTC)
BODY_BYTES = 500_000  # Segment's batch limit: 500 KB a request body
ROWS_PER_FILE = 24  # 12 MB of bodies a file, decoded; a few KB on disk (they compress well)
FILES = 3
MiB = 2**20
# Proxy pools are kept for the life of the process: a buffer allocated through one is freed
# through it, possibly after the test, and a freed pool would crash that.
_POOLS: list[pa.MemoryPool] = []


@contextmanager
def arrow_peak() -> Iterator[pa.MemoryPool]:
    """Route Arrow's allocations through a fresh proxy pool; its max_memory is the peak."""
    previous = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(previous)
    _POOLS.append(pool)
    pa.set_memory_pool(pool)
    try:
        yield pool
    finally:
        pa.set_memory_pool(previous)


def write_bodies(logs_dir: Path) -> Path:
    """FILES files of ROWS_PER_FILE request bodies each, in today's outbound_log partition."""
    writer = LogWriter(logs_dir)
    for n in range(FILES):
        writer.write(
            "outbound_log",
            [
                {
                    "timestamp": NOW,
                    "event_type": "track",
                    "identifier": f"r{n}-{i}",
                    "request_body": f"{n}-{i}".ljust(BODY_BYTES, "x"),
                }
                for i in range(ROWS_PER_FILE)
            ],
        )
    return partition_dir(logs_dir, "outbound_log", NOW.date())


def test_a_merge_holds_a_row_group_and_a_read_batch_not_a_whole_input_file(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(merge, "ROW_GROUP_BYTES", 2 * MiB)
    monkeypatch.setattr(merge, "READ_BATCH_BYTES", 1 * MiB)
    directory = write_bodies(tmp_path)
    files = data_files(directory)
    assert len(files) == FILES

    with arrow_peak() as pool:
        rows = merge.merge_files("outbound_log", files, directory)

    assert rows == FILES * ROWS_PER_FILE
    # A row group (2 MiB) and the batch that closed it (1 MiB): 2.9 MiB measured. Reading
    # each input file whole (12 MB of bodies) held 26.7 MiB; keeping the row group just
    # written while the next one is read, 5.7 MiB.
    held = pool.max_memory()
    assert held <= 4 * MiB, f"{held / MiB:.1f} MiB held at once"
    [merged] = data_files(directory)
    table = pq.read_table(merged, columns=["identifier", "request_body"])
    assert sorted(table["identifier"].to_pylist()) == sorted(
        f"r{n}-{i}" for n in range(FILES) for i in range(ROWS_PER_FILE)
    )
    assert all(len(body) == BODY_BYTES for body in table["request_body"].to_pylist())


def test_retention_rewrites_the_cutoff_day_a_batch_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """The cutoff day is usually one compacted file: a day of request bodies, which retention
    read whole (and kept every file's remainder in a list) before it streamed them."""
    monkeypatch.setattr(merge, "ROW_GROUP_BYTES", 2 * MiB)
    monkeypatch.setattr(maintenance, "READ_BATCH_BYTES", 1 * MiB)  # counting the rows
    monkeypatch.setattr(merge, "READ_BATCH_BYTES", 1 * MiB)  # rewriting those kept
    cutoff = datetime(2026, 3, 1, 12, tzinfo=UTC)
    writer = LogWriter(tmp_path)
    for n in range(FILES):  # half of each file's rows before the cutoff, half after
        writer.write(
            "outbound_log",
            [
                {
                    "timestamp": cutoff + timedelta(hours=1 if i % 2 else -1),
                    "event_type": "track",
                    "identifier": f"r{n}-{i}",
                    "request_body": f"{n}-{i}".ljust(BODY_BYTES, "x"),
                }
                for i in range(ROWS_PER_FILE)
            ],
        )
    directory = partition_dir(tmp_path, "outbound_log", cutoff.date())
    assert len(data_files(directory)) == FILES

    with arrow_peak() as pool:
        removed = maintenance.apply_retention(tmp_path, "outbound_log", cutoff)

    assert removed == FILES * ROWS_PER_FILE // 2
    held = pool.max_memory()  # reading each file whole and keeping the remainders: 38.2 MiB
    assert held <= 4 * MiB, f"{held / MiB:.1f} MiB held at once"
    [rewritten] = data_files(directory)
    kept = pq.read_table(rewritten, columns=["identifier", "request_body"])
    assert sorted(kept["identifier"].to_pylist()) == sorted(
        f"r{n}-{i}" for n in range(FILES) for i in range(1, ROWS_PER_FILE, 2)
    )
    assert all(len(body) == BODY_BYTES for body in kept["request_body"].to_pylist())
