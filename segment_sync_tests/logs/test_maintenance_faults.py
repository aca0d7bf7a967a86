"""Log maintenance when the disk or a file is bad: no good row is lost, one clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.store import LogWriteError
from segment_sync_tests.disks import break_disk
from segment_sync_tests.logs.test_maintenance import all_messages, file_count, write_small_batches

NOW = datetime(2024, 3, 3, tzinfo=UTC)  # write_small_batches' rows are from 2024-03-01 on


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

    with pytest.raises(LogWriteError) as raised:
        maintain_logs(logs_dir, retention_days=90, min_files=2, now=NOW)

    assert f"logs.dir ({logs_dir})" in str(raised.value) and reason in str(raised.value)
    assert file_count(logs_dir) == 10 and all_messages(logs_dir) == before
    repair()
    maintain_logs(logs_dir, retention_days=90, min_files=2, now=NOW)
    assert file_count(logs_dir) == 2 and all_messages(logs_dir) == before
