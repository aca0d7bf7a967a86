"""Merging log files into one, safe against a crash at any point (hourly and fresh merges).

A merge publishes one new file and then deletes its inputs. POSIX cannot swap several directory
entries at once, so a process killed between the two steps would leave the rows twice. Each
merge therefore first writes a journal beside the files, `.<merged name>.merging` (no glob
matches it), naming the merged file and its inputs, and removes it last. `finish_interrupted`,
run under the table's maintenance lock before every merge of a partition, completes what a
killed merge left: if the merged file was published its remaining inputs are deleted, otherwise
the half-written file and the journal go and the inputs stay. Either way every row is there once.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from segment_sync.locks import file_lock
from segment_sync.logs.damaged import DamagedFile, is_damage, read_in_batches
from segment_sync.logs.layout import (
    TEMP_SUFFIX,
    fsync,
    new_file_paths,
    parquet_options,
    table_dir,
)
from segment_sync.logs.schema import schema_for

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

ROW_GROUP_ROWS = 128_000
# A merge holds one row group at a time: bounded in bytes too, since outbound_log rows carry
# request bodies of up to 500 KB (128,000 of them would be tens of GiB). 8 MiB, not 32: a run's
# merge (every 5 minutes, and at its end) is part of its peak RSS, which must stay flat by
# backlog (issue 26). The price: 4x the row groups (16 bodies each), so a bigger footer.
ROW_GROUP_BYTES = 8 * 2**20
# Inputs are read a batch of about this many bytes at a time, so what a merge holds is a row
# group and one batch, whatever the size of a file (zstd takes JSON bodies about 8x: a 16 MiB file
# of them decodes to ~130 MiB).
READ_BATCH_BYTES = 2 * 2**20
LOCK_TIMEOUT_S = 60.0
JOURNAL_SUFFIX = ".merging"


class TableBusy(TimeoutError):
    """Another maintainer (the hourly job, or a run merging its fresh files) holds the table."""

    def __init__(self, table: str, timeout_s: float) -> None:
        self.table = table
        super().__init__(f"{table}: another compaction or retention still runs after {timeout_s}s")


@contextmanager
def maintenance_lock(
    logs_dir: Path | str, table: str, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the table's maintenance lock; TableBusy if another holder keeps it `timeout_s`."""
    busy = TableBusy(table, timeout_s)
    with file_lock(table_dir(logs_dir, table) / ".maintenance.lock", timeout_s, busy):
        yield


def merge_files(table: str, files: list[Path], directory: Path, *, durable: bool = False) -> int:
    """Write `files` as one new file in `directory`, then delete them; return the row count.

    DamagedFile if an input cannot be read (nothing is published or deleted then)."""
    target = merged_schema(table, files)
    tmp, final = new_file_paths(directory)
    journal = write_journal(directory, final, files, durable)
    try:
        rows = publish(read_conformed(files, target), target, tmp, final, durable)
    except BaseException:
        if not final.exists():  # not published: the inputs stay, the journal goes
            journal.unlink(missing_ok=True)
        raise
    unlink_all(files)
    journal.unlink()
    return rows


def has_journal(directory: Path) -> bool:
    """Did a merge in `directory` stop before it finished (see finish_interrupted)?"""
    return any(directory.glob(f".*{JOURNAL_SUFFIX}"))


def finish_interrupted(directory: Path) -> int:
    """Complete the merges a killed process left in `directory` (hold the maintenance lock);
    return how many left-over inputs were deleted."""
    deleted = 0
    for journal in sorted(directory.glob(f".*{JOURNAL_SUFFIX}")):
        try:
            body = json.loads(journal.read_text())
            merged, inputs = directory / body["merged"], [directory / n for n in body["replaces"]]
        except (OSError, ValueError, KeyError, TypeError):
            journal.unlink(missing_ok=True)  # written whole before its merge began: none ran
            continue
        if merged.exists():
            deleted += sum(path.exists() for path in inputs)
            unlink_all(inputs)
        else:
            (directory / f".{merged.name}{TEMP_SUFFIX}").unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
    return deleted


def write_journal(directory: Path, final: Path, files: list[Path], durable: bool = False) -> Path:
    """Record, before the merged file exists, which files it replaces (written whole)."""
    journal = directory / f".{final.name}{JOURNAL_SUFFIX}"
    tmp = directory / f"{journal.name}{TEMP_SUFFIX}"
    tmp.write_text(json.dumps({"merged": final.name, "replaces": [p.name for p in files]}))
    if durable:
        fsync(tmp)
    os.replace(tmp, journal)
    return journal


def merged_schema(
    table: str, files: Sequence[Path | str], filesystem: FileSystem | None = None
) -> pa.Schema:
    """The current schema (all nullable) followed by any extra columns found in `files`;
    DamagedFile naming a file whose footer cannot be read."""
    fields = [field.with_nullable(True) for field in schema_for(table)]
    known = {field.name for field in fields}
    for path in files:
        try:
            schema = pq.read_schema(path, filesystem=filesystem)
        except (pa.ArrowException, OSError) as exc:
            if is_damage(exc) and not isinstance(exc, FileNotFoundError):
                raise DamagedFile(Path(path)) from exc
            raise
        for field in schema:
            if field.name not in known:
                fields.append(field.with_nullable(True))
                known.add(field.name)
    return pa.schema(fields)


def read_conformed(
    files: Iterable[Path | str],
    target: pa.Schema,
    keep: Callable[[pa.RecordBatch], pa.Array] | None = None,
    filesystem: FileSystem | None = None,
) -> Iterator[pa.Table]:
    """The rows of `files` in order (those `keep` keeps), READ_BATCH_BYTES at a time, as
    `target` (see conform)."""
    for path in files:
        for batch in read_in_batches(path, READ_BATCH_BYTES, filesystem):
            data = pa.Table.from_batches([batch])
            if keep is not None:
                data = data.filter(keep(batch))
            if data.num_rows:
                yield conform(data, target)


def conform(data: pa.Table, target: pa.Schema) -> pa.Table:
    """`data` with `target`'s columns, order and types (missing columns as NULL)."""
    columns = [
        data[field.name].cast(field.type)
        if field.name in data.column_names
        else pa.nulls(data.num_rows, field.type)
        for field in target
    ]
    return pa.Table.from_arrays(columns, schema=target)


def publish(
    tables: Iterable[pa.Table], target: pa.Schema, tmp: Path, final: Path, durable: bool = False
) -> int:
    """Stream `tables` into `tmp`, then rename it to `final` (atomic for readers); row count."""
    rows = 0
    try:
        with contextlib.ExitStack() as open_writer:
            writer: pq.ParquetWriter | None = None
            for chunk in _row_groups(tables):
                if writer is None:  # the options (page batches, no body statistics) by its rows
                    options = parquet_options(chunk)
                    writer = open_writer.enter_context(pq.ParquetWriter(tmp, target, **options))
                writer.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
                rows += chunk.num_rows
                del chunk  # else it is held while the next row group is read: two at once
            if writer is None:  # no rows: a file of the schema alone
                pq.write_table(target.empty_table(), tmp, **parquet_options(target.empty_table()))
        if durable:
            fsync(tmp)
        os.replace(tmp, final)
        if durable:  # the rename is on disk before any input is deleted
            fsync(final.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _row_groups(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Regroup small tables into chunks of about ROW_GROUP_ROWS rows or ROW_GROUP_BYTES bytes,
    whichever comes first (memory stays bounded)."""
    buffer: list[pa.Table] = []
    rows = size = 0
    for table in tables:
        buffer.append(table)
        rows += table.num_rows
        size += table.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield pa.concat_tables(buffer)
            buffer, rows, size = [], 0, 0
    if buffer:
        yield pa.concat_tables(buffer)


def unlink_all(files: Iterable[Path]) -> None:
    """Delete files, tolerating ones already gone."""
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
