"""Logs on S3 with three writer processes and two maintainer processes at once: nothing lost,
nothing counted twice, every file read whole, and a reader never blocked."""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import data_objects
from segment_sync.logs.store import LogWriter
from segment_sync.logs.vanished import is_vanished_file
from segment_sync.logs.views import connect

pytestmark = pytest.mark.slow

WRITE_SECONDS = 4.0
BATCH_ROWS = 20
JOIN_TIMEOUT_S = 120.0
CTX = multiprocessing.get_context("spawn")


def writer_process(url: str, name: str, results: Any) -> None:
    """Write batches (alternating today and yesterday) for WRITE_SECONDS; report the ids."""
    try:
        writer = LogWriter(url)
        batches, deadline = 0, time.monotonic() + WRITE_SECONDS
        while time.monotonic() < deadline or batches < 2:  # both days, however loaded
            at = datetime.now(UTC) - timedelta(days=batches % 2)
            rows = [
                {"timestamp": at, "message_id": f"{name}-{batches}-{i}", "outcome": "delivered"}
                for i in range(BATCH_ROWS)
            ]
            writer.write("outbound_messages", rows)
            batches += 1
        results.put((name, "ok", batches * BATCH_ROWS))
    except Exception:
        results.put((name, "error", traceback.format_exc()))


def maintainer_process(url: str, name: str, stop: Any, results: Any) -> None:
    """Run retention and compaction passes until told to stop; report how many ran."""
    try:
        passes = 0
        while not stop.is_set() or passes == 0:
            maintain_logs(url, retention_days=90, min_files=2)
            passes += 1
        results.put((name, "ok", passes))
    except Exception:
        results.put((name, "error", traceback.format_exc()))


def _read_counts(url: str) -> tuple[int, int] | None:
    """(rows, distinct ids) through the views; None when a file went away mid-query (the
    documented rerun case: its rows are in the merged file the next query lists)."""
    try:
        with connect(url) as con:
            return con.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
            ).fetchone()
    except (duckdb.Error, OSError) as exc:
        gone = "not found" in str(exc).lower() or "NoSuchKey" in str(exc)
        if gone or is_vanished_file(exc):  # the object was compacted away after the listing
            return None
        raise


def test_three_writers_and_two_maintainers_lose_nothing_and_count_nothing_twice(
    s3_url: str,
) -> None:
    results, stop = CTX.Queue(), CTX.Event()
    env_ok = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(os.environ)
    assert env_ok, "the s3_server fixture sets the AWS test variables the processes inherit"
    writers = [
        CTX.Process(target=writer_process, args=(s3_url, f"w{n}", results)) for n in range(3)
    ]
    maintainers = [
        CTX.Process(target=maintainer_process, args=(s3_url, f"m{n}", stop, results))
        for n in range(2)
    ]
    for process in [*maintainers, *writers]:
        process.start()
    reads, last = [], 0
    try:
        while any(w.is_alive() for w in writers):
            counts = _read_counts(s3_url)
            if counts is not None:
                rows, distinct = counts
                assert rows == distinct, f"{rows - distinct} row(s) counted twice"
                assert rows >= last, f"row count went backwards: {last} -> {rows}"
                last = rows
                reads.append(rows)
        stop.set()
        for process in [*writers, *maintainers]:
            process.join(JOIN_TIMEOUT_S)
    finally:
        for process in [*writers, *maintainers]:
            if process.is_alive():
                process.kill()
    reports = [results.get(timeout=5) for _ in range(5)]
    errors = [r for r in reports if r[1] != "ok"]
    assert not errors, errors
    written = sum(n for name, _, n in reports if name.startswith("w"))
    assert all(n >= 1 for name, _, n in reports if name.startswith("m"))
    assert reads, "the reader ran while the writers wrote"

    maintain_logs(s3_url, retention_days=90, min_files=2)
    with connect(s3_url) as con:
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
        ).fetchone()
        days = con.execute('SELECT count(DISTINCT "date") FROM outbound_messages').fetchone()[0]
    assert (rows, distinct) == (written, written)
    assert len(data_objects(S3Logs.parse(s3_url), "outbound_messages")) == days == 2


def whole_file_writer(url: str, rows: int, files: int, results: Any) -> None:
    """Publish `files` files of exactly `rows` rows each; random bodies make each file about
    13 MB, past pyarrow's 10 MB part size, so it goes up as a multipart upload (two parts,
    then one CompleteMultipartUpload)."""
    try:
        writer = LogWriter(url)
        for n in range(files):
            now = datetime.now(UTC)
            writer.write(
                "outbound_log",
                [
                    {
                        "timestamp": now,
                        "event_type": "track",
                        "identifier": f"{n}-{i}",
                        "request_body": os.urandom(4000).hex(),
                    }
                    for i in range(rows)
                ],
            )
        results.put(("writer", "ok", files))
    except Exception:
        results.put(("writer", "error", traceback.format_exc()))


def test_a_reader_sees_each_file_whole_or_not_at_all(s3_url: str) -> None:
    rows, files = 3200, 4
    results = CTX.Queue()
    writer = CTX.Process(target=whole_file_writer, args=(s3_url, rows, files, results))
    writer.start()
    logs = S3Logs.parse(s3_url)
    checked: set[str] = set()
    try:
        while writer.is_alive() or len(checked) < files:
            for obj in data_objects(logs, "outbound_log"):
                if obj.path in checked:
                    continue
                with logs.fs.open_input_file(obj.path) as handle:
                    table = pq.ParquetFile(handle).read()
                assert table.num_rows == rows, f"{obj.path}: {table.num_rows} of {rows} rows"
                checked.add(obj.path)
            if not writer.is_alive() and len(checked) < files:
                break
    finally:
        writer.join(JOIN_TIMEOUT_S)
    assert results.get(timeout=5) == ("writer", "ok", files)
    assert len(checked) == files
