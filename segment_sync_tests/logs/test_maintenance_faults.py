"""Log maintenance when the disk or a file is bad: no good row is lost, one clear error."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segment_sync.logs.damaged import read_problem
from segment_sync.logs.incomplete import MaintenanceIncomplete
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.merge import maintenance_lock
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.disks import break_disk, damage_file
from segment_sync_tests.logs.test_log_store import T0 as DAY1
from segment_sync_tests.logs.test_log_store import outbound_request
from segment_sync_tests.logs.test_maintenance import all_messages, file_count, write_small_batches

NOW = datetime(2024, 3, 3, tzinfo=UTC)  # the rows here are from 2024-03-01 on
DAY2 = DAY1 + timedelta(days=1)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
def test_compaction_on_an_unwritable_disk_keeps_every_file_and_names_logs_dir(
    small_tmpfs: Path, fault: str, reason: str
) -> None:
    logs_dir = small_tmpfs / "logs"
    write_small_batches(logs_dir, days=2, batches=5)
    before = all_messages(logs_dir)
    repair = break_disk(small_tmpfs, fault)

    with pytest.raises(MaintenanceIncomplete) as raised:
        maintain_logs(logs_dir, retention_days=90, min_files=2, now=NOW)

    assert f"logs.dir ({logs_dir})" in str(raised.value) and reason in str(raised.value)
    assert raised.value.disk_refused
    assert isinstance(raised.value.failures["outbound_messages"], LogWriteError)
    assert file_count(logs_dir) == 10 and all_messages(logs_dir) == before
    repair()
    maintain_logs(logs_dir, retention_days=90, min_files=2, now=NOW)
    assert file_count(logs_dir) == 2 and all_messages(logs_dir) == before


def request_file(logs_dir: Path, name: str, rows: int = 1, body_bytes: int = 0) -> Path:
    """One outbound_log file of `rows` requests `name-<i>` on DAY1; a big body makes its data
    pages most of the file."""
    requests = [
        outbound_request(identifier=f"{name}-{i}", request_body=os.urandom(body_bytes).hex())
        for i in range(rows)
    ]
    [path] = LogWriter(logs_dir).write("outbound_log", requests)
    return path


def identifiers(logs_dir: Path) -> set[str]:
    with connect(logs_dir) as con:
        return {i for (i,) in con.execute("SELECT identifier FROM outbound_log").fetchall()}


@pytest.mark.parametrize("how", ["truncated", "scrambled-pages"])
def test_compaction_moves_a_damaged_file_to_quarantine_and_merges_the_good_ones(
    tmp_path: Path, how: str
) -> None:
    good = [request_file(tmp_path, f"good{n}") for n in range(4)]
    damaged = request_file(tmp_path, "bad", rows=100, body_bytes=1500)
    damage_file(damaged, how)
    if how == "scrambled-pages":  # its footer reads: only merging its data finds the damage
        assert read_problem(damaged) is None and read_problem(damaged, deep=True)
    kept = damaged.read_bytes()

    [outbound_log] = [
        t for t in maintain_logs(tmp_path, 90, 2, now=NOW) if t.table == "outbound_log"
    ]

    moved = tmp_path / "quarantine" / damaged.relative_to(tmp_path)
    assert outbound_log.quarantined == (moved,) and moved.read_bytes() == kept
    assert not any(path.exists() for path in [*good, damaged])  # merged into one new file
    assert outbound_log.files_after == 1 and outbound_log.rows_after == 4
    assert identifiers(tmp_path) == {f"good{n}-0" for n in range(4)}  # the views work again


def test_retention_moves_a_damaged_file_of_the_cutoff_day_to_quarantine(tmp_path: Path) -> None:
    old = request_file(tmp_path, "old")
    damaged = request_file(tmp_path, "bad")
    damage_file(damaged, "truncated")
    cutoff = DAY1 + timedelta(hours=1)  # the cutoff day is DAY1: its files are trimmed

    [outbound_log] = [
        t for t in maintain_logs(tmp_path, 0, 2, now=cutoff) if t.table == "outbound_log"
    ]

    assert outbound_log.quarantined == (tmp_path / "quarantine" / damaged.relative_to(tmp_path),)
    assert outbound_log.rows_removed == 1 and not old.exists()
    assert identifiers(tmp_path) == set()


def test_a_held_table_is_skipped_at_once_and_never_stops_the_tables_after_it(
    tmp_path: Path,
) -> None:
    write_small_batches(tmp_path, days=2, batches=5)
    for name in "ab":
        request_file(tmp_path, name)
    before = (all_messages(tmp_path), identifiers(tmp_path))
    first = list(TABLES).index("outbound_log")
    assert "outbound_messages" in list(TABLES)[first + 1 :]  # the table after the one held

    with maintenance_lock(tmp_path, "outbound_log"):  # no wait: no lock_timeout_s given
        report = {t.table: t for t in maintain_logs(tmp_path, 90, 2, now=NOW)}

    assert [t for t, r in report.items() if r.busy] == ["outbound_log"]  # no failure
    assert report["outbound_messages"].files_after == 2 and not report["outbound_messages"].busy
    assert file_count(tmp_path) == 2 and file_count(tmp_path, "outbound_log") == 2
    maintain_logs(tmp_path, retention_days=90, min_files=2, now=NOW)  # the next run: all of it
    assert file_count(tmp_path, "outbound_log") == 1
    assert (all_messages(tmp_path), identifiers(tmp_path)) == before


def test_a_file_moved_to_quarantine_is_reported_also_when_its_table_then_fails(
    small_tmpfs: Path,
) -> None:
    logs_dir = small_tmpfs / "logs"
    damaged = request_file(logs_dir, "bad")  # on DAY1, the cutoff day: retention reads it
    damage_file(damaged, "truncated")
    writer = LogWriter(logs_dir)
    for n in range(2):  # the next day's small files: compaction must write to merge them
        writer.write("outbound_log", [outbound_request(identifier=f"g{n}", timestamp=DAY2)])
    break_disk(small_tmpfs, "full")

    with pytest.raises(MaintenanceIncomplete) as raised:
        maintain_logs(logs_dir, 0, 2, now=DAY1 + timedelta(hours=1))

    moved = logs_dir.resolve() / "quarantine" / damaged.resolve().relative_to(logs_dir.resolve())
    assert moved.exists() and not damaged.exists()  # retention moved it out of the views
    assert isinstance(raised.value.failures["outbound_log"], LogWriteError)  # compaction: full
    # No later run reports a file already moved: this run's failure must name it.
    assert raised.value.quarantined == [moved]
