"""recorded_run writes the rows a run left queued: every table's, and its sync_runs row says
whether they could be written (runs.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from segment_sync.logs.layout import data_files, partition_dir
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, recorded_run

NOW = datetime.now(UTC)

# One valid row per table a run queues as it goes.
ROWS = {
    "outbound_log": {"timestamp": NOW, "event_type": "track"},
    "outbound_messages": {"timestamp": NOW, "message_id": "m1", "outcome": "delivered"},
    "inbound_log": {"timestamp": NOW, "status": "success", "message_id": "i1"},
    "inbound_items": {"timestamp": NOW, "message_id": "i1", "outcome": "done"},
}


def refuse_writes(logs_dir: Path, table: str) -> None:
    """Today's partition of `table` is a file, not a folder: every write of it fails (OSError),
    the other tables' writes do not."""
    target = partition_dir(logs_dir, table, NOW.date())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("not a folder")


def written(logs_dir: Path, table: str) -> int:
    target = partition_dir(logs_dir, table, NOW.date())
    if not target.is_dir():
        return 0
    return sum(pq.read_metadata(path).num_rows for path in data_files(target))


def sync_runs_statuses(logs_dir: Path) -> list[str]:
    target = partition_dir(logs_dir, "sync_runs", NOW.date())
    if not target.is_dir():
        return []
    return [s for path in data_files(target) for s in pq.read_table(path)["status"].to_pylist()]


def flush_order(tables: list[str]) -> list[str]:
    """The order LogWriter.flush() takes tables queued in this order (a set's, in this process)."""
    return list({*dict.fromkeys(tables)})


def test_a_run_whose_queued_rows_cannot_be_written_is_recorded_as_a_failure(
    tmp_path: Path,
) -> None:
    logs = LogWriter(tmp_path)
    refuse_writes(tmp_path, "outbound_messages")

    record = RunRecord("run-1", "outbound", "manual")
    with pytest.raises(LogWriteError), recorded_run(logs, record, Redactor(())):
        logs.extend("outbound_messages", [ROWS["outbound_messages"]])  # left queued

    # The run raised: its one sync_runs row must say so, not "success" (nor be missing).
    assert sync_runs_statuses(tmp_path) == ["failure"]


def test_a_stopped_run_writes_the_queued_rows_of_every_table_one_table_cannot_be_written(
    tmp_path: Path,
) -> None:
    logs = LogWriter(tmp_path)
    order = flush_order(list(ROWS))
    refused, others = order[0], order[1:]  # the table the writer takes first
    refuse_writes(tmp_path, refused)

    record = RunRecord("run-2", "inbound", "manual")
    with pytest.raises(RuntimeError), recorded_run(logs, record, Redactor(())):
        for table, row in ROWS.items():
            logs.extend(table, [row])
        raise RuntimeError("the run fails with rows still queued")

    # One table refusing its file never keeps the rows of the tables beside it unwritten.
    assert {table: written(tmp_path, table) for table in others} == dict.fromkeys(others, 1)
    assert sync_runs_statuses(tmp_path) == ["failure"]
