"""Compaction and retention on S3 stream their rows: a day of request bodies is never held in
memory (Arrow's own accounting through a proxy pool, as test_merge_memory.py), and a damaged
object is quarantined while the others are still merged."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from segment_sync.logs import merge
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import (
    UPLOAD_PART_BYTES,
    data_objects,
    partition_path,
    put_file,
    put_whole,
)
from segment_sync.logs.store import LogWriter
from segment_sync_tests.logs.test_merge_memory import BODY_BYTES, MiB, arrow_peak

DAY = datetime(2026, 3, 1, 12, tzinfo=UTC)
FILES, ROWS = 3, 24  # 12 MB of bodies an object, decoded


def _write_bodies(s3_url: str, at=lambda n, i: DAY) -> None:
    writer = LogWriter(s3_url)
    for n in range(FILES):
        writer.write(
            "outbound_log",
            [
                {
                    "timestamp": at(n, i),
                    "event_type": "track",
                    "identifier": f"r{n}-{i}",
                    "request_body": f"{n}-{i}".ljust(BODY_BYTES, "x"),
                }
                for i in range(ROWS)
            ],
        )


def _identifiers(logs: S3Logs) -> list[str]:
    [merged] = data_objects(logs, "outbound_log")
    with logs.fs.open_input_file(merged.path) as handle:
        table = pq.ParquetFile(handle).read(columns=["identifier", "request_body"])
    assert all(len(body) == BODY_BYTES for body in table["request_body"].to_pylist())
    return sorted(table["identifier"].to_pylist())


def test_compaction_on_s3_holds_a_row_group_not_a_day(s3_url: str, monkeypatch) -> None:
    monkeypatch.setattr(merge, "ROW_GROUP_BYTES", 2 * MiB)
    monkeypatch.setattr(merge, "READ_BATCH_BYTES", 1 * MiB)
    _write_bodies(s3_url)
    logs = S3Logs.parse(s3_url)
    assert len(data_objects(logs, "outbound_log")) == FILES

    with arrow_peak() as pool:
        maintain_logs(s3_url, retention_days=3650, min_files=2, now=DAY)

    held = pool.max_memory()  # every object read whole and concatenated: 38.2 MiB
    assert held <= 8 * MiB, f"{held / MiB:.1f} MiB held at once"
    assert _identifiers(logs) == sorted(f"r{n}-{i}" for n in range(FILES) for i in range(ROWS))


def test_retention_on_s3_rewrites_the_cutoff_day_a_batch_at_a_time(
    s3_url: str, monkeypatch
) -> None:
    monkeypatch.setattr(merge, "ROW_GROUP_BYTES", 2 * MiB)
    monkeypatch.setattr(merge, "READ_BATCH_BYTES", 1 * MiB)
    _write_bodies(s3_url, at=lambda n, i: DAY + timedelta(hours=1 if i % 2 else -1))
    logs = S3Logs.parse(s3_url)

    with arrow_peak() as pool:  # the cutoff is DAY, ten days on: min_files keeps compaction out
        maintain_logs(s3_url, retention_days=10, min_files=99, now=DAY + timedelta(days=10))

    held = pool.max_memory()  # each object read whole, remainders kept: 38.2 MiB
    assert held <= 8 * MiB, f"{held / MiB:.1f} MiB held at once"
    assert _identifiers(logs) == sorted(
        f"r{n}-{i}" for n in range(FILES) for i in range(1, ROWS, 2)
    )


def test_a_damaged_object_is_quarantined_and_the_others_are_merged(s3_url: str) -> None:
    _write_bodies(s3_url)
    logs = S3Logs.parse(s3_url)
    damaged = (
        f"{partition_path(logs, 'outbound_log', DAY.date())}/20260301T120000000000Z-bad.parquet"
    )
    put_whole(logs, damaged, b"PAR1 not a parquet file PAR1")

    [report] = [
        t
        for t in maintain_logs(s3_url, retention_days=3650, min_files=2, now=DAY)
        if t.table == "outbound_log"
    ]

    assert [p.name for p in report.quarantined] == ["20260301T120000000000Z-bad.parquet"]
    assert _identifiers(logs) == sorted(f"r{n}-{i}" for n in range(FILES) for i in range(ROWS))


def test_a_merged_file_bigger_than_a_part_is_uploaded_whole(s3_url: str, tmp_path) -> None:
    logs = S3Logs.parse(s3_url)
    local = tmp_path / "merged.parquet"
    local.write_bytes(os.urandom(2 * UPLOAD_PART_BYTES + 12345))  # three parts, incompressible
    path = f"{partition_path(logs, 'outbound_log', DAY.date())}/20260301T120000000000Z-big.parquet"

    put_file(logs, path, local)

    with logs.fs.open_input_file(path) as handle:
        assert handle.read() == local.read_bytes()
