"""Fresh merges: a run's end folds today's small log files into one, every row kept once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from segment_sync.logs import fresh
from segment_sync.logs.fresh import merge_fresh, merge_fresh_logs
from segment_sync.logs.layout import data_files, partition_dir
from segment_sync.logs.maintenance import maintenance_lock
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, recorded_run

NOW = datetime.now(UTC)


def message(message_id: str, timestamp: datetime = NOW) -> dict[str, Any]:
    return {"timestamp": timestamp, "message_id": message_id, "outcome": "delivered"}


def write_files(logs_dir: Path, count: int, timestamp: datetime = NOW, prefix: str = "m") -> None:
    """`count` one-flush files of two rows each."""
    writer = LogWriter(logs_dir)
    for n in range(count):
        writer.write(
            "outbound_messages", [message(f"{prefix}{n}-{i}", timestamp) for i in range(2)]
        )


def today_files(logs_dir: Path, when: datetime = NOW) -> list[Path]:
    return data_files(partition_dir(logs_dir, "outbound_messages", when.date()))


def message_ids(logs_dir: Path) -> list[str]:
    with connect(logs_dir) as con:
        rows = con.execute("SELECT message_id FROM outbound_messages ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_a_day_with_enough_small_files_becomes_one_file_with_every_row_once(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, 20)
    before = message_ids(tmp_path)

    merged = merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=20)

    assert merged == 20
    assert len(today_files(tmp_path)) == 1
    assert message_ids(tmp_path) == before and len(before) == 40


def test_fewer_small_files_than_the_threshold_are_left_alone(tmp_path: Path) -> None:
    write_files(tmp_path, 5)

    assert merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=6) == 0
    assert len(today_files(tmp_path)) == 5


def test_a_file_past_the_small_size_is_never_rewritten(tmp_path: Path, monkeypatch) -> None:
    write_files(tmp_path, 4)
    merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=4)
    [big] = today_files(tmp_path)
    monkeypatch.setattr(fresh, "FRESH_FILE_BYTES", big.stat().st_size)  # it counts as big now
    write_files(tmp_path, 4, prefix="later")

    merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=4)

    files = today_files(tmp_path)
    assert len(files) == 2 and big in files
    assert len(message_ids(tmp_path)) == 16


def test_a_busy_maintenance_lock_skips_the_merge_instead_of_waiting(tmp_path: Path) -> None:
    write_files(tmp_path, 4)
    done = threading.Event()

    with maintenance_lock(tmp_path, "outbound_messages"):
        thread = threading.Thread(
            target=lambda: (
                merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=4),
                done.set(),
            )
        )
        thread.start()
        assert done.wait(10)  # returned while the lock was held
    thread.join()

    assert len(today_files(tmp_path)) == 4


def test_yesterday_is_merged_too_older_days_are_left_to_the_hourly_maintenance(
    tmp_path: Path,
) -> None:
    yesterday, older = NOW - timedelta(days=1), NOW - timedelta(days=2)
    write_files(tmp_path, 3, yesterday, "y")
    write_files(tmp_path, 3, older, "o")

    merge_fresh_logs(tmp_path, now=NOW, min_files=3)

    assert len(today_files(tmp_path, yesterday)) == 1
    assert len(today_files(tmp_path, older)) == 3


def test_a_damaged_small_file_does_not_fail_the_merge_call_and_loses_nothing(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, 3)
    bad = today_files(tmp_path)[1]
    bad.write_bytes(b"PAR1 not really parquet PAR1")

    assert merge_fresh_logs(tmp_path, now=NOW, min_files=3) == 0

    assert len(today_files(tmp_path)) == 3  # left for the hourly maintenance to quarantine


def test_a_run_that_ends_merges_the_small_files_its_flushes_left(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(fresh, "FRESH_MERGE_FILES", 5)
    logs = LogWriter(tmp_path)

    with recorded_run(logs, RunRecord("run-1", "outbound", "manual"), Redactor(())):
        for n in range(6):
            logs.write("outbound_messages", [message(f"r{n}")])

    assert len(today_files(tmp_path)) == 1
    assert message_ids(tmp_path) == sorted(f"r{n}" for n in range(6))


def test_merged_files_keep_the_current_schema(tmp_path: Path) -> None:
    write_files(tmp_path, 2)
    merge_fresh(tmp_path, "outbound_messages", NOW.date(), min_files=2)

    [merged] = today_files(tmp_path)

    assert pq.read_schema(merged).field("message_id").type == pa.string()


def test_a_long_run_merges_its_small_files_every_few_minutes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fresh, "FRESH_MERGE_FILES", 5)
    writer = LogWriter(tmp_path)
    writer.merge_every_s = 0  # as if every flush came five minutes after the last merge

    for n in range(6):
        writer.write("outbound_messages", [message(f"f{n}")])

    assert len(today_files(tmp_path)) == 2  # merged at the fifth flush, then one more file
    assert message_ids(tmp_path) == sorted(f"f{n}" for n in range(6))


def test_flushes_sooner_than_that_leave_the_files_for_later(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fresh, "FRESH_MERGE_FILES", 2)
    writer = LogWriter(tmp_path)

    for n in range(6):
        writer.write("outbound_messages", [message(f"f{n}")])

    assert len(today_files(tmp_path)) == 6


def test_a_merge_of_request_bodies_holds_a_bounded_row_group_at_a_time(
    tmp_path: Path, monkeypatch
) -> None:
    from segment_sync.logs import merge

    monkeypatch.setattr(merge, "ROW_GROUP_BYTES", 2 * 2**20)  # 2 MiB, so the test stays small
    body = "x" * 500_000  # Segment's batch limit: 500 KB a request body
    writer = LogWriter(tmp_path)
    for n in range(12):  # 12 files x 2 rows x 500 KB = 12 MB of bodies
        writer.write(
            "outbound_log",
            [
                {
                    "timestamp": NOW,
                    "event_type": "track",
                    "identifier": f"r{n}-{i}",
                    "request_body": body,
                }
                for i in range(2)
            ],
        )
    directory = partition_dir(tmp_path, "outbound_log", NOW.date())

    merge_fresh(tmp_path, "outbound_log", NOW.date(), min_files=12)

    [merged] = data_files(directory)
    metadata = pq.ParquetFile(merged).metadata
    assert metadata.num_rows == 24
    assert metadata.num_row_groups == 4  # 3 MB each (a group closes past 2 MiB), not one of 12 MB
    body_column = metadata.schema.names.index("request_body")
    assert not metadata.row_group(0).column(body_column).is_stats_set  # no copies of bodies
