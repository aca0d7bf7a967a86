"""The log layout's typed empty files: made, kept current, and remade when damaged."""

from __future__ import annotations

import errno
import os
import random
import stat
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segment_sync.logs import layout
from segment_sync.logs.compaction import compact
from segment_sync.logs.layout import (
    IN_MEMORY_BYTES,
    RAW_BODIES_MAX_BYTES,
    SCHEMA_PARTITION,
    SUMMARY_SUFFIX,
    data_files,
    has_raw_bodies,
    partition_dir,
    table_dir,
    write_parquet,
)
from segment_sync.logs.merge import merge_files
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.disks import damage_file, fill_disk
from segment_sync_tests.logs.test_summaries import requests


@pytest.mark.parametrize("name", ["_schema.parquet", f"_schema{SUMMARY_SUFFIX}"])
@pytest.mark.parametrize("how", ["truncated", "scrambled-pages"])
def test_a_damaged_typed_empty_file_is_rewritten_not_failing_every_writer_and_view(
    tmp_path: Path, name: str, how: str
) -> None:
    """They hold no rows (logs check does not list them): a damaged one is simply made again,
    where it failed every log writer and daily_summary (and the check found nothing)."""
    LogWriter(tmp_path).write("outbound_log", requests(datetime(2024, 3, 1, tzinfo=UTC), 5, 1))
    damage_file(table_dir(tmp_path, "outbound_log") / SCHEMA_PARTITION / name, how)
    writer = LogWriter(tmp_path)
    writer.write("outbound_log", requests(datetime(2024, 3, 1, tzinfo=UTC), 5, 2))
    with connect(tmp_path) as con:
        (requests_logged,) = con.execute(
            "SELECT sum(requests) FROM daily_summary WHERE direction = 'outbound'"
        ).fetchone()
    assert requests_logged == 10


def test_a_write_that_takes_part_of_a_small_file_is_continued_and_a_failed_one_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file goes to disk in one os.write, which may take only part of it (a disk
    filling up): the rest is written, and a write that fails leaves no temporary file behind."""
    rows = pa.table({"n": list(range(2000))})
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:100]))
    path = write_parquet(rows, tmp_path, durable=True)
    assert pq.read_table(path).equals(rows)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        write_parquet(rows, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_small_file_gets_the_mode_arrows_writer_gives_under_the_umask(tmp_path) -> None:
    """0o666 less the umask, as a file Arrow's writer (or open) creates: a group-writable
    umask leaves the logs group-writable, as before small files were written in one write."""
    table = pa.table({"a": [1]})
    previous = os.umask(0o002)
    try:
        ours = write_parquet(table, tmp_path)
        pq.write_table(table, tmp_path / "arrows.parquet")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(ours.stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "arrows.parquet").stat().st_mode) == 0o664


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_file_that_does_not_fit_on_the_disk_leaves_no_temporary_file(
    small_tmpfs: Path, size: str
) -> None:
    """Encoded in memory (up to IN_MEMORY_BYTES) or streamed to the file (larger): a write that
    runs out of space raises and leaves nothing behind in the partition."""
    rows = 40_000 if size == "small" else 600_000  # ~0.8 MB or ~12 MB in memory
    table = pa.table({"text": [os.urandom(8).hex() for _ in range(rows)]})
    assert (table.nbytes > IN_MEMORY_BYTES) is (size == "streamed")
    directory = small_tmpfs / "partition"
    filler = fill_disk(small_tmpfs)
    filler.write_bytes(b"\0" * (filler.stat().st_size - 64 * 1024))  # 64 KiB left: a page fits
    with pytest.raises(OSError) as raised:
        write_parquet(table, directory, compression="none")
    assert raised.value.errno == errno.ENOSPC
    assert list(directory.iterdir()) == []


def test_a_streamed_file_whose_flush_to_disk_fails_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync can fail after every byte was written (EIO: the disk lost it); the file is gone."""
    table = pa.table({"text": [os.urandom(8).hex() for _ in range(600_000)]})
    assert table.nbytes > IN_MEMORY_BYTES

    def lost(path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(layout, "fsync", lost)
    with pytest.raises(OSError, match="Input/output"):
        write_parquet(table, tmp_path, durable=True)
    assert list(tmp_path.iterdir()) == []


def _body_bytes(path: Path) -> int:
    """The compressed size of a file's request_body column, over its row groups."""
    meta = pq.ParquetFile(path).metadata
    index = meta.schema.to_arrow_schema().get_field_index("request_body")
    return sum(
        meta.row_group(g).column(index).total_compressed_size for g in range(meta.num_row_groups)
    )


def test_a_flush_leaves_bodies_uncompressed_and_a_merge_compresses_them(tmp_path) -> None:
    """A body is compressed once, by the merge (a body's log row must cost no more than sending
    it); the other columns of a flush are compressed, and the merge's bodies as zstd makes them."""
    day = datetime(2026, 12, 7, 12, tzinfo=UTC)
    bodies = _bodies(6)
    rows = _request_rows(bodies)
    writer = LogWriter(tmp_path)
    writer.write("outbound_log", rows[:3])
    writer.write("outbound_log", rows[3:])
    directory = partition_dir(tmp_path, "outbound_log", day.date())
    flushed = data_files(directory)
    assert len(flushed) == 2
    plain = pa.BufferOutputStream()
    pq.write_table(pa.table({"request_body": bodies}), plain, compression="zstd")
    at_default = _body_bytes(pa.BufferReader(plain.getvalue()))
    raw = sum(map(len, bodies))
    assert raw <= sum(map(_body_bytes, flushed)) < 1.01 * raw
    meta = pq.ParquetFile(flushed[0]).metadata.row_group(0)
    codecs = {
        meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)
    }
    assert codecs["request_body"] == "UNCOMPRESSED" and codecs["event_type"] == "ZSTD"
    merge_files("outbound_log", flushed, directory)
    [merged] = data_files(directory)
    assert _body_bytes(merged) <= 1.05 * at_default
    assert pq.read_table(merged)["request_body"].to_pylist() == bodies


def _bodies(count: int, seed: int = 0) -> list[str]:
    """JSON-like request bodies of about 75 KB each."""
    rng = random.Random(seed)
    return [
        ",".join(f'{{"userId":"c-{rng.randrange(10**6)}","points":{rng.randrange(500)}}}' for _ in range(3000))
        for _ in range(count)
    ]  # fmt: skip


def _request_rows(bodies: list[str]) -> list[dict]:
    day = datetime(2026, 12, 7, 12, tzinfo=UTC)
    return [{"timestamp": day, "event_type": "track", "request_body": b} for b in bodies]


def test_a_flush_too_big_for_the_run_end_merge_compresses_its_bodies(tmp_path) -> None:
    """Over RAW_BODIES_MAX_BYTES a merge would hold it raw and whole, so it is zstd at once."""
    rows = _request_rows(_bodies(16 * 2**20 // 75_000 + 20))
    [path] = LogWriter(tmp_path).write("outbound_log", rows)
    assert pa.table({"b": [r["request_body"] for r in rows]}).nbytes > RAW_BODIES_MAX_BYTES
    assert not has_raw_bodies(path)
    assert pq.ParquetFile(path).metadata.row_group(0).column(3).compression == "ZSTD"


def test_compaction_compresses_a_partitions_only_file_left_with_raw_bodies(tmp_path) -> None:
    """compact() merges partitions of at least 2 files; a day with one flush is rewritten all
    the same when its bodies are uncompressed, and a day already compressed is left alone."""
    writer = LogWriter(tmp_path)
    [raw] = writer.write("outbound_log", _request_rows(_bodies(2)))
    assert has_raw_bodies(raw)
    result = compact(tmp_path, "outbound_log")
    [compressed] = data_files(raw.parent)
    assert compressed != raw and not has_raw_bodies(compressed)
    assert (result.files_before, result.files_after) == (1, 1)
    assert pq.read_table(compressed)["request_body"].to_pylist() == _bodies(2)
    compact(tmp_path, "outbound_log")
    assert data_files(raw.parent) == [compressed]  # not rewritten again


def test_a_clean_up_that_fails_leaves_the_writes_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file cannot be removed either (a read-only remount says EROFS): the
    error raised is still the write's (the hourly maintenance removes stale temporary files)."""

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def refused(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(OSError) as raised:
        write_parquet(pa.table({"n": [1, 2, 3]}), tmp_path)
    assert raised.value.errno == errno.ENOSPC
