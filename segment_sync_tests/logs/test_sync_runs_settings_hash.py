"""`sync_runs` gained a settings_hash column: rows written before it stay readable (NULL there),
beside new rows, before and after compaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from segment_sync.logs.layout import partition_dir, write_parquet
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.schema import SYNC_RUNS
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect

NOW = datetime.now(UTC)


def _old_file(logs_dir) -> None:
    """A sync_runs file as runs wrote it before the column existed."""
    old_schema = pa.schema([f for f in SYNC_RUNS if f.name != "settings_hash"])
    row = {"run_id": "old", "job": "outbound_sync_job", "started_at": NOW, "status": "success"}
    table = pa.Table.from_pylist([row], schema=old_schema)
    write_parquet(table, partition_dir(logs_dir, "sync_runs", NOW.date()))


def _hashes(logs_dir) -> list[tuple]:
    with connect(logs_dir) as con:
        return con.execute("SELECT run_id, settings_hash FROM sync_runs ORDER BY run_id").fetchall()


def test_rows_written_before_the_settings_hash_read_as_null_beside_new_rows(tmp_path):
    logs_dir = tmp_path / "logs"
    _old_file(logs_dir)
    LogWriter(logs_dir).write(
        "sync_runs",
        [{"run_id": "new", "job": "outbound_sync_job", "started_at": NOW,
          "status": "success", "settings_hash": "0123456789abcdef"}],
    )  # fmt: skip
    assert _hashes(logs_dir) == [("new", "0123456789abcdef"), ("old", None)]


def test_compaction_keeps_old_and_new_rows_with_their_hashes(tmp_path):
    logs_dir = tmp_path / "logs"
    _old_file(logs_dir)
    LogWriter(logs_dir).write(
        "sync_runs",
        [{"run_id": "new", "job": "outbound_sync_job", "started_at": NOW,
          "status": "success", "settings_hash": "0123456789abcdef"}],
    )  # fmt: skip
    [report] = [t for t in maintain_logs(logs_dir, 90, 2) if t.table == "sync_runs"]
    assert (report.files_before, report.files_after) == (2, 1)
    assert _hashes(logs_dir) == [("new", "0123456789abcdef"), ("old", None)]
