"""Two writer processes and an analyst holding the DuckDB file never block or fail each other."""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
from datetime import UTC, datetime
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import duckdb

from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect, ensure_analytics_db

WRITE_SECONDS = 3.0
BATCH_ROWS = 25
JOIN_TIMEOUT_S = 60.0
CTX = multiprocessing.get_context("spawn")


def writer_process(logs_dir: str, name: str, results: Any) -> None:
    """Write small batches for WRITE_SECONDS; report rows written, or the error."""
    try:
        writer = LogWriter(logs_dir)
        written = batches = 0
        deadline = time.monotonic() + WRITE_SECONDS
        while time.monotonic() < deadline:
            now = datetime.now(UTC)
            rows = [
                {"timestamp": now, "message_id": f"{name}-{batches}-{i}", "outcome": "delivered"}
                for i in range(BATCH_ROWS)
            ]
            writer.extend("outbound_messages", rows)
            writer.append(
                "outbound_log",
                {"timestamp": now, "event_type": "track", "identifier": f"{name}-{batches}"},
            )
            writer.flush()
            written += len(rows)
            batches += 1
        results.put((name, "ok", {"messages": written, "requests": batches}))
    except Exception:
        results.put((name, "error", traceback.format_exc()))


def analyst_process(db_path: str, read_only: bool, ready: Any, stop: Any, results: Any) -> None:
    """Hold the analysts' file open and query the views until told to stop."""
    try:
        con = duckdb.connect(db_path, read_only=read_only)
        ready.set()
        queries = last = 0
        while not stop.is_set():
            count = con.execute("SELECT count(*) FROM outbound_messages").fetchone()[0]
            con.execute("SELECT * FROM daily_summary").fetchall()
            if count < last:
                raise AssertionError(f"row count went backwards: {last} -> {count}")
            last = count
            queries += 1
        con.close()
        results.put(("analyst", "ok", {"queries": queries, "last_count": last}))
    except Exception:
        ready.set()
        results.put(("analyst", "error", traceback.format_exc()))


def run_writers_beside_analyst(logs_dir: Path, *, read_only: bool) -> dict[str, Any]:
    """Start the analyst, then two writers; return every process's report and the final counts."""
    db_path = str(ensure_analytics_db(logs_dir))
    results, ready, stop = CTX.Queue(), CTX.Event(), CTX.Event()
    analyst = CTX.Process(target=analyst_process, args=(db_path, read_only, ready, stop, results))
    writers = [
        CTX.Process(target=writer_process, args=(str(logs_dir), name, results))
        for name in ("writer-a", "writer-b")
    ]
    started: list[SpawnProcess] = []
    try:
        analyst.start()
        started.append(analyst)
        assert ready.wait(JOIN_TIMEOUT_S), "analyst never opened the database"
        for writer in writers:
            writer.start()
            started.append(writer)
        reports = collect(results, 2, until=time.monotonic() + WRITE_SECONDS + JOIN_TIMEOUT_S)
        with connect(logs_dir) as con:  # in memory: works while the analyst holds the file
            totals = con.execute(
                "SELECT (SELECT count(*) FROM outbound_messages), "
                "(SELECT count(DISTINCT message_id) FROM outbound_messages), "
                "(SELECT count(*) FROM outbound_log)"
            ).fetchone()
        stop.set()
        reports.update(collect(results, 1, until=time.monotonic() + JOIN_TIMEOUT_S))
    finally:
        stop.set()
        join_or_terminate(started)
    reports["exit_codes"] = [process.exitcode for process in started]
    reports["totals"] = totals
    return reports


def join_or_terminate(processes: list[SpawnProcess]) -> None:
    """Wait for each process to end; terminate one still running after JOIN_TIMEOUT_S."""
    for process in processes:
        process.join(timeout=JOIN_TIMEOUT_S)
        if process.is_alive():
            process.terminate()


def collect(results: Any, count: int, until: float) -> dict[str, Any]:
    """`count` reports from the queue, keyed by process name; fail on timeout or error."""
    reports: dict[str, Any] = {}
    while len(reports) < count:
        try:
            name, status, detail = results.get(timeout=max(0.1, until - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"timed out waiting for reports; got {reports}") from None
        assert status == "ok", f"{name} failed:\n{detail}"
        reports[name] = detail
    return reports


def assert_everything_written_is_readable(reports: dict[str, Any]) -> None:
    """Every process exited cleanly and the views hold exactly the rows written."""
    messages = reports["writer-a"]["messages"] + reports["writer-b"]["messages"]
    requests = reports["writer-a"]["requests"] + reports["writer-b"]["requests"]
    assert reports["exit_codes"] == [0, 0, 0]
    assert reports["totals"] == (messages, messages, requests)
    assert messages > 0 and reports["analyst"]["queries"] > 0


def test_two_writer_processes_and_a_read_only_analyst_run_side_by_side(tmp_path: Path) -> None:
    reports = run_writers_beside_analyst(tmp_path, read_only=True)

    assert_everything_written_is_readable(reports)
    assert reports["analyst"]["last_count"] > 0  # the analyst saw rows arrive while holding it


def test_writers_succeed_while_an_analyst_holds_the_file_read_write(tmp_path: Path) -> None:
    reports = run_writers_beside_analyst(tmp_path, read_only=False)

    assert_everything_written_is_readable(reports)


def maintainer_process(logs_dir: str, stop: Any, results: Any) -> None:
    """What each worker's maintenance run does, in a loop: compaction and retention."""
    from segment_sync.logs.maintenance import apply_retention, compact

    try:
        rounds = 0
        while not stop.is_set():
            compact(logs_dir, "outbound_messages")
            apply_retention(logs_dir, "outbound_messages", datetime(2000, 1, 1, tzinfo=UTC))
            rounds += 1
        results.put((f"maintainer-{os.getpid()}", "ok", {"rounds": rounds}))
    except Exception:
        results.put((f"maintainer-{os.getpid()}", "error", traceback.format_exc()))


def test_three_writers_and_two_maintainers_on_one_logs_dir_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    """Workers on one shared logs.dir: every row once, whoever compacts meanwhile."""
    LogWriter(tmp_path)
    results, stop = CTX.Queue(), CTX.Event()
    names = ["writer-a", "writer-b", "writer-c"]
    writers = [CTX.Process(target=writer_process, args=(str(tmp_path), n, results)) for n in names]
    maintainers = [
        CTX.Process(target=maintainer_process, args=(str(tmp_path), stop, results))
        for _ in range(2)
    ]
    processes = [*maintainers, *writers]
    try:
        for process in processes:
            process.start()
        reports = collect(results, len(writers), until=time.monotonic() + WRITE_SECONDS + 120)
        stop.set()
        reports.update(collect(results, len(maintainers), until=time.monotonic() + 120))
    finally:
        stop.set()
        join_or_terminate(processes)

    written = sum(reports[n]["messages"] for n in names)
    rounds = [r["rounds"] for key, r in reports.items() if key.startswith("maintainer")]
    with connect(tmp_path) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
        ).fetchone()
    assert [p.exitcode for p in processes] == [0] * 5
    assert len(rounds) == 2 and min(rounds) >= 1  # both compacted while the writers wrote
    assert (total, distinct) == (written, written)
    assert not list(tmp_path.rglob("*.tmp"))
