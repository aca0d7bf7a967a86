"""A merge killed at any step (SIGKILL, a real process) leaves every row exactly once after the
next merge of that partition, whether that is a run's fresh merge or the hourly compaction."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segment_sync.logs.fresh import merge_fresh
from segment_sync.logs.layout import data_files, partition_dir
from segment_sync.logs.maintenance import compact
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect

CTX = multiprocessing.get_context("spawn")
NOW = datetime.now(UTC)
FILES = 6
ROWS = 3


def merge_until_killed(logs_dir: str, step: str, ready: str) -> None:
    """Merge today's files, stopping for good at `step` (touching `ready` when there)."""
    from segment_sync.logs import merge

    def stop_here() -> None:
        Path(ready).touch()
        time.sleep(600)  # the parent kills us here

    publish, unlink_all = merge.publish, merge.unlink_all
    if step == "journaled":  # the journal is written, the merged file is not published

        def before_publish(*args, **kwargs):
            stop_here()
            return publish(*args, **kwargs)

        merge.publish = before_publish
    elif step == "half-written":  # the merged file's temporary copy is being written

        def half_written(tables, target, tmp, final, durable=False):
            tmp.write_bytes(b"PAR1 half a file")
            stop_here()

        merge.publish = half_written
    elif step in ("published", "half-deleted"):

        def after_publish(files):
            if step == "half-deleted":
                unlink_all(list(files)[: FILES // 2])
            stop_here()

        merge.unlink_all = after_publish
    directory = partition_dir(logs_dir, "outbound_messages", NOW.date())
    merge.merge_files("outbound_messages", data_files(directory), directory)


def rows(logs_dir: Path) -> tuple[int, int]:
    with connect(logs_dir) as con:
        return con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
        ).fetchone()


def kill_merge_at(tmp_path: Path, step: str) -> Path:
    """Write FILES small files, start a merge in a process, SIGKILL it at `step`."""
    writer = LogWriter(tmp_path)
    for n in range(FILES):
        rows_ = [
            {"timestamp": NOW, "message_id": f"m{n}-{i}", "outcome": "delivered"}
            for i in range(ROWS)
        ]
        writer.write("outbound_messages", rows_)
    kill_when_ready(tmp_path, merge_until_killed, str(tmp_path), step)
    return partition_dir(tmp_path, "outbound_messages", NOW.date())


def kill_when_ready(tmp_path: Path, target, *args: str) -> None:
    """Run `target(*args, ready)` in a process and SIGKILL it once it touches `ready`."""
    ready = tmp_path / "ready"
    child = CTX.Process(target=target, args=(*args, str(ready)))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.is_alive() and time.monotonic() < deadline, "it never got there"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    ready.unlink()


STEPS = ["journaled", "half-written", "published", "half-deleted"]


@pytest.mark.parametrize("step", STEPS)
def test_the_next_fresh_merge_finishes_a_killed_merge_with_every_row_once(
    tmp_path: Path, step: str
) -> None:
    directory = kill_merge_at(tmp_path, step)

    merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=2)

    assert rows(tmp_path) == (FILES * ROWS, FILES * ROWS)
    assert len(data_files(directory)) == 1
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("step", ["published", "half-deleted"])
def test_a_fresh_merge_finishes_a_killed_merge_even_below_its_file_threshold(
    tmp_path: Path, step: str
) -> None:
    directory = kill_merge_at(tmp_path, step)  # the merged file and up to FILES inputs are left

    merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=FILES + 10)

    assert rows(tmp_path) == (FILES * ROWS, FILES * ROWS)
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("step", STEPS)
def test_the_hourly_compaction_finishes_a_killed_merge_with_every_row_once(
    tmp_path: Path, step: str
) -> None:
    directory = kill_merge_at(tmp_path, step)

    compact(tmp_path, "outbound_messages")

    assert rows(tmp_path) == (FILES * ROWS, FILES * ROWS)
    assert len(data_files(directory)) == 1
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []


def trim_until_killed(logs_dir: str, cutoff: str, ready: str) -> None:
    """Apply retention that rewrites today's files, stopping once the rewrite is published."""
    from segment_sync.logs import maintenance

    unlink_all = maintenance.unlink_all

    def stop_after_publishing(files):
        if not files:  # the schema partition's (empty) turn
            return unlink_all(files)
        Path(ready).touch()
        time.sleep(600)  # the parent kills us here

    maintenance.unlink_all = stop_after_publishing
    maintenance.apply_retention(logs_dir, "outbound_messages", datetime.fromisoformat(cutoff))


def test_retention_killed_after_publishing_its_rewrite_leaves_each_kept_row_once(
    tmp_path: Path,
) -> None:
    writer = LogWriter(tmp_path)
    for n in range(FILES):  # each file: a row before the cutoff, one at it
        older, kept = NOW - timedelta(seconds=1), NOW
        writer.write(
            "outbound_messages",
            [
                {"timestamp": older, "message_id": f"old{n}", "outcome": "delivered"},
                {"timestamp": kept, "message_id": f"kept{n}", "outcome": "delivered"},
            ],
        )
    kill_when_ready(tmp_path, trim_until_killed, str(tmp_path), NOW.isoformat())

    compact(tmp_path, "outbound_messages")

    with connect(tmp_path) as con:
        ids = con.execute("SELECT message_id FROM outbound_messages ORDER BY 1").fetchall()
    assert [i for (i,) in ids] == sorted(f"kept{n}" for n in range(FILES))
