"""What counts as a damaged log file: one that cannot be read, never one a merge deleted
while it was being checked (two processes' run-end merges churn the same partitions)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from segment_sync.logs.damaged import read_problem, unreadable_files
from segment_sync.logs.store import LogWriter
from segment_sync_tests.logs.test_summaries import requests

DAY = datetime(2024, 3, 1, tzinfo=UTC)


def test_a_log_file_gone_when_duckdb_opens_it_is_gone_not_damaged(tmp_path: Path) -> None:
    """CI saw a sync run fail with "log file X cannot be read (IO Error: No files found that
    match the pattern X)": pyarrow read X, a merge deleted it, DuckDB's check then failed."""
    (kept,) = LogWriter(tmp_path).write("outbound_log", requests(DAY, 2, seed=1))
    stop = threading.Event()

    def merge_like_churn() -> None:  # a file published, then deleted soon after, again and again
        for n in itertools.count():
            if stop.is_set():
                return
            fleeting = kept.with_name(f"{n:08d}-fleeting.parquet")
            os.link(kept, fleeting)
            time.sleep(0.001)
            fleeting.unlink()

    churn = threading.Thread(target=merge_like_churn)
    churn.start()
    try:
        blamed = [found for _ in range(100) if (found := unreadable_files(tmp_path))]
    finally:
        stop.set()
        churn.join()
    assert blamed == []


def test_a_missing_log_file_is_file_not_found_for_the_callers_to_skip(tmp_path: Path) -> None:
    (written,) = LogWriter(tmp_path).write("outbound_log", requests(DAY, 2, seed=1))
    written.unlink()
    try:
        read_problem(written)
    except FileNotFoundError:
        return
    raise AssertionError("a deleted file was read as having a problem, not as gone")
