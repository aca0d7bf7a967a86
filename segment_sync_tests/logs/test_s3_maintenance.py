"""Compaction and retention of logs on S3: every row kept once, exactly the old rows removed,
and a merge interrupted at any step never counted twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from segment_sync.logs.damaged import is_damage
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.merge import conform, merged_schema
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import (
    data_objects,
    markers,
    parquet_bytes,
    partition_path,
    put_whole,
    visible_objects,
    write_marker,
)
from segment_sync.logs.s3_lease import Lease, LeaseLost
from segment_sync.logs.s3_maintenance import _replace, finish_interrupted
from segment_sync.logs.store import LogWriter, to_arrow
from segment_sync.logs.views import connect

NOW = datetime.now(UTC).replace(microsecond=0)


def _messages(prefix: str, count: int, at: datetime = NOW) -> list[dict]:
    return [
        {"timestamp": at, "message_id": f"{prefix}-{i}", "outcome": "delivered"}
        for i in range(count)
    ]


def _ids(url: str) -> list[str]:
    with connect(url) as con:
        rows = con.execute("SELECT message_id FROM outbound_messages ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_compaction_merges_each_day_into_one_file_keeping_every_row(s3_url: str) -> None:
    writer = LogWriter(s3_url)
    for batch in range(4):
        writer.write("outbound_messages", _messages(f"b{batch}", 5))
    report = {t.table: t for t in maintain_logs(s3_url, retention_days=90, min_files=2)}
    logs = S3Logs.parse(s3_url)
    assert (report["outbound_messages"].files_before, report["outbound_messages"].files_after) == (
        4,
        1,
    )
    assert len(data_objects(logs, "outbound_messages")) == 1
    assert _ids(s3_url) == sorted(f"b{b}-{i}" for b in range(4) for i in range(5))


def test_a_table_whose_lease_is_held_is_skipped_at_once_and_never_stops_the_others(
    s3_url: str,
) -> None:
    writer = LogWriter(s3_url)
    for batch in range(3):
        writer.write("outbound_messages", _messages(f"b{batch}", 2))
    logs = S3Logs.parse(s3_url)
    other = Lease(logs, "outbound_log", ttl_s=60)  # another maintainer, on the table before
    assert other.try_acquire()
    try:
        report = maintain_logs(s3_url, retention_days=90, min_files=2)  # no wait given
    finally:
        other.release()
    assert [r.table for r in report if r.busy] == ["outbound_log"]  # no failure
    assert [r.files_after for r in report if r.table == "outbound_messages"] == [1]
    assert len(data_objects(logs, "outbound_messages")) == 1
    assert _ids(s3_url) == sorted(f"b{b}-{i}" for b in range(3) for i in range(2))


def test_retention_removes_exactly_the_rows_before_the_cutoff(s3_url: str) -> None:
    writer = LogWriter(s3_url)
    old, cutoff_day, young = NOW - timedelta(days=12), NOW - timedelta(days=10), NOW
    writer.write("outbound_messages", _messages("old", 3, old))
    writer.write("outbound_messages", _messages("edge-before", 2, cutoff_day - timedelta(hours=1)))
    writer.write("outbound_messages", _messages("edge-after", 2, cutoff_day + timedelta(hours=1)))
    writer.write("outbound_messages", _messages("young", 1, young))
    report = maintain_logs(s3_url, retention_days=10, min_files=2, now=NOW)
    removed = {t.table: t.rows_removed for t in report}["outbound_messages"]
    assert removed == 5
    assert _ids(s3_url) == ["edge-after-0", "edge-after-1", "young-0"]


def _merge_left_half_done(logs: S3Logs, *, merged_written: bool) -> list[str]:
    """Two input files, the marker of their merge and (if asked) the merged file; return the
    inputs: what a maintainer that stopped before deleting them leaves behind."""
    writer = LogWriter(logs.url)
    inputs = [str(writer.write("outbound_messages", _messages(name, 3))[0]) for name in ("x", "y")]
    merged = f"{partition_path(logs, 'outbound_messages', NOW.date())}/zz-merged.parquet"
    write_marker(logs, "outbound_messages", merged, inputs)
    if merged_written:
        rows = _messages("x", 3) + _messages("y", 3)
        put_whole(logs, merged, parquet_bytes(to_arrow("outbound_messages", rows)))
    return inputs


def test_a_merged_file_and_its_inputs_are_never_counted_together(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    _merge_left_half_done(logs, merged_written=True)
    assert len(data_objects(logs, "outbound_messages")) == 3
    assert _ids(s3_url) == sorted(f"{n}-{i}" for n in "xy" for i in range(3))


def test_a_merge_stopped_before_its_merged_file_counts_the_inputs(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    inputs = _merge_left_half_done(logs, merged_written=False)
    assert sorted(o.path for o in visible_objects(logs, "outbound_messages")) == sorted(inputs)
    assert len(_ids(s3_url)) == 6


def test_the_next_pass_deletes_the_inputs_a_stopped_merge_left(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    inputs = _merge_left_half_done(logs, merged_written=True)
    assert finish_interrupted(logs, "outbound_messages") == len(inputs)
    assert len(data_objects(logs, "outbound_messages")) == 1
    assert len(_ids(s3_url)) == 6


def test_markers_outlive_their_merge_by_the_grace_period_then_go(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    _merge_left_half_done(logs, merged_written=True)
    finish_interrupted(logs, "outbound_messages")
    assert len(markers(logs, "outbound_messages")) == 1
    finish_interrupted(logs, "outbound_messages", now=datetime.now(UTC).timestamp() + 3600)
    assert markers(logs, "outbound_messages") == []


class UploadOutlastsLease(Lease):
    """A holder whose merged-file upload takes longer than its lease: another maintainer takes
    the lease while it uploads (between its second and third renewal)."""

    renewals = 0

    def renew(self) -> None:
        self.renewals += 1
        if self.renewals == 2:
            time.sleep(self.ttl_s + 0.3)
            assert Lease(self.logs, self.table).try_acquire()
        super().renew()


def test_a_merge_whose_lease_was_taken_during_the_upload_withdraws_its_file(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    writer = LogWriter(s3_url)
    inputs = [str(writer.write("outbound_messages", _messages(n, 2))[0]) for n in "ab"]
    held = UploadOutlastsLease(logs, "outbound_messages", ttl_s=0.3)
    assert held.try_acquire()
    target = merged_schema("outbound_messages", inputs, logs.fs)
    tables = [conform(to_arrow("outbound_messages", _messages(n, 2)), target) for n in "ab"]
    with pytest.raises(LeaseLost):
        _replace(logs, held, "outbound_messages", NOW.date(), inputs, tables, target)
    assert sorted(o.path for o in data_objects(logs, "outbound_messages")) == sorted(inputs)
    assert markers(logs, "outbound_messages") == []
    assert len(_ids(s3_url)) == 4


def test_a_merged_file_cut_short_is_withdrawn_and_its_inputs_kept(s3_url: str) -> None:
    """An upload cut short and completed anyway (pyarrow's output stream completes at close)
    must not be taken for the merge: the next pass would delete the inputs holding the rows."""
    logs = S3Logs.parse(s3_url)
    inputs = _merge_left_half_done(logs, merged_written=False)
    merged = f"{partition_path(logs, 'outbound_messages', NOW.date())}/zz-merged.parquet"
    whole = parquet_bytes(to_arrow("outbound_messages", _messages("x", 3) + _messages("y", 3)))
    put_whole(logs, merged, pa.py_buffer(whole.to_pybytes()[: whole.size // 2]))

    finish_interrupted(logs, "outbound_messages")

    assert sorted(o.path for o in data_objects(logs, "outbound_messages")) == sorted(inputs)
    assert markers(logs, "outbound_messages") == []
    assert _ids(s3_url) == sorted(f"{n}-{i}" for n in "xy" for i in range(3))


def test_an_s3_error_is_no_damage() -> None:
    """pyarrow's S3 errors carry no errno, as a damaged file's do: an object that could not be
    fetched (network, throttling) must not be quarantined as damaged."""
    unreachable = pafs.S3FileSystem(
        endpoint_override="127.0.0.1:9", scheme="http", connect_timeout=1, request_timeout=1,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    )  # fmt: skip
    with pytest.raises(OSError) as raised:
        pq.read_metadata("bucket/outbound_log/date=2026-03-01/x.parquet", filesystem=unreachable)
    assert raised.value.errno is None and "AWS Error" in str(raised.value)
    assert not is_damage(raised.value)
    assert is_damage(OSError("Unexpected end of stream"))  # a local read of a cut file


def test_a_bad_merged_file_whose_inputs_are_gone_is_left_for_quarantine(s3_url: str) -> None:
    """With every input deleted, the merged file is the only copy of its rows: withdrawing it
    would lose them, where quarantine keeps them for inspection."""
    logs = S3Logs.parse(s3_url)
    merged = f"{partition_path(logs, 'outbound_messages', NOW.date())}/zz-merged.parquet"
    write_marker(logs, "outbound_messages", merged, [])
    put_whole(logs, merged, pa.py_buffer(b"PAR1 cut short"))

    finish_interrupted(logs, "outbound_messages")

    assert [o.path for o in data_objects(logs, "outbound_messages")] == [merged]
