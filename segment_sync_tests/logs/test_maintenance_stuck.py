"""A busy table that stays busy fails the run (transient) once its retention is a day overdue:
a hung holder (NFS, a wedged run) or a lease from a clock ahead never stops retention silently."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segment_sync.logs.incomplete import MaintenanceIncomplete
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_lease import LEASE_DIR
from segment_sync.logs.store import LogWriter
from segment_sync.logs.stuck import TableStuck
from segment_sync_tests.logs.lock_holder import held_by_another_process

NOW = datetime.now(UTC).replace(microsecond=0)


def write_message(logs_dir: Path | str, name: str, at: datetime) -> None:
    LogWriter(logs_dir).write(
        "outbound_messages", [{"timestamp": at, "message_id": name, "outcome": "delivered"}]
    )


def test_a_busy_table_a_day_past_its_retention_fails_the_run_naming_the_lock(
    tmp_path: Path,
) -> None:
    write_message(tmp_path, "old", NOW - timedelta(days=400))
    write_message(tmp_path, "new", NOW)

    with (
        held_by_another_process(tmp_path, "outbound_messages"),
        pytest.raises(MaintenanceIncomplete) as raised,
    ):
        maintain_logs(tmp_path, retention_days=30, min_files=2, now=NOW)

    assert raised.value.kind == "transient"
    assert set(raised.value.failures) == {"outbound_messages"}
    assert isinstance(raised.value.failures["outbound_messages"], TableStuck)
    message = str(raised.value)
    lock = tmp_path / "outbound_messages" / ".maintenance.lock"
    assert "held through every maintenance run for over a day" in message
    assert f"fuser -v {lock}" in message
    assert [r.table for r in raised.value.report if r.busy] == []  # the others were maintained
    # freed, the next run drops the old partition
    report = maintain_logs(tmp_path, retention_days=30, min_files=2, now=NOW)
    assert {r.table: r.rows_removed for r in report}["outbound_messages"] == 1


def test_a_busy_table_not_overdue_stays_a_warning(tmp_path: Path) -> None:
    # past its retention, but by less than a day: the hourly runs may just have met the holder
    write_message(tmp_path, "recent", NOW - timedelta(days=30, hours=1))
    write_message(tmp_path, "new", NOW)

    with held_by_another_process(tmp_path, "outbound_messages"):
        report = maintain_logs(tmp_path, retention_days=30, min_files=2, now=NOW)

    assert [r.table for r in report if r.busy] == ["outbound_messages"]


def test_a_folder_left_by_a_dropped_partition_is_no_sign(tmp_path: Path) -> None:
    write_message(tmp_path, "old", NOW - timedelta(days=400))
    maintain_logs(tmp_path, retention_days=30, min_files=2, now=NOW)
    old_dir = tmp_path / "outbound_messages" / f"date={(NOW - timedelta(days=400)).date()}"
    old_dir.mkdir(parents=True, exist_ok=True)  # what a schema file keeps from rmdir

    with held_by_another_process(tmp_path, "outbound_messages"):
        report = maintain_logs(tmp_path, retention_days=30, min_files=2, now=NOW)

    assert [r.table for r in report if r.busy] == ["outbound_messages"]


def test_on_s3_a_lease_from_a_clock_ahead_fails_the_run_once_overdue(s3_url: str) -> None:
    write_message(s3_url, "old", NOW - timedelta(days=400))
    logs = S3Logs.parse(s3_url)
    ahead = {"owner": "other-host:4242:abcd", "expires_at": time.time() + 86400 * 3}
    key = logs.key(LEASE_DIR, "outbound_messages.lease")
    logs.client.put_object(Bucket=logs.bucket, Key=key, Body=json.dumps(ahead).encode())

    with pytest.raises(MaintenanceIncomplete) as raised:
        maintain_logs(s3_url, retention_days=30, min_files=2, now=NOW)

    assert raised.value.kind == "transient"
    assert set(raised.value.failures) == {"outbound_messages"}
    message = str(raised.value)
    assert "owner other-host:4242:abcd" in message
    assert "outbound_messages.lease" in message
    assert "delete the lease object" in message


def test_on_s3_a_held_lease_not_overdue_stays_a_warning(s3_url: str) -> None:
    write_message(s3_url, "new", NOW)
    logs = S3Logs.parse(s3_url)
    held = {"owner": "other-host:4242:abcd", "expires_at": time.time() + 600}
    key = logs.key(LEASE_DIR, "outbound_messages.lease")
    logs.client.put_object(Bucket=logs.bucket, Key=key, Body=json.dumps(held).encode())

    report = maintain_logs(s3_url, retention_days=30, min_files=2, now=NOW)

    assert [r.table for r in report if r.busy] == ["outbound_messages"]
