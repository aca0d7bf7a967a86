"""The Parquet logs on S3: the local layout, files published whole, merges never counted twice.

Layout under the prefix, as in a local logs.dir (layout.py):

    <table>/date=YYYY-MM-DD/<utc-timestamp>-<uuid>.parquet   data files, immutable once published
    _replaced/<table>/<merged file name>.json                 which files a merged file replaces
    _leases/<table>.lease                                     the maintenance lease (s3_lease.py)

Whole or not at all: a file is serialised in memory first and only then uploaded to its final
key. S3 shows an object only once its PUT (or CompleteMultipartUpload) has succeeded, never part
of one, so no temporary name and rename is needed (S3 has no rename); a failed upload leaves
nothing to read.

Never counted twice: maintenance writes a marker naming the merged file and the files it
replaces, then the merged file, then deletes the inputs. A reader lists the data files first and
the markers second (S3 listings are strongly consistent): a listing that holds a merged file
therefore finds its marker, and the inputs are left out. Markers outlive their inputs by
MARKER_GRACE_S, so a reader between its two listings still finds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from segment_sync.logs.layout import PARTITION_PREFIX, new_file_name, parquet_options
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.schema import schema_for

REPLACED_DIR = "_replaced"
MARKER_GRACE_S = 600.0


@dataclass(frozen=True)
class LogObject:
    """One published data file: its pyarrow path (`bucket/key`), UTC day, size and age."""

    path: str
    day: date
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Marker:
    """A merged file and the files it replaces (pyarrow paths)."""

    path: str
    merged: str
    replaces: tuple[str, ...]
    mtime: float


def parquet_bytes(data: pa.Table) -> pa.Buffer:
    """`data` as a Parquet file in memory, written as layout.write_parquet writes a file."""
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, **parquet_options(data))
    return sink.getvalue()


def put_whole(logs: S3Logs, path: str, body: pa.Buffer) -> None:
    """Upload a finished object to its final key (visible only once the upload completes)."""
    with logs.fs.open_output_stream(path) as out:
        out.write(body)


UPLOAD_PART_BYTES = 8 * 2**20


def put_file(logs: S3Logs, path: str, local: Path) -> None:
    """Upload a finished local file to its final key, visible only once whole: boto3 sends
    a big one in parts of UPLOAD_PART_BYTES (two at a time, so memory stays bounded) and
    aborts the multipart upload when a part fails. pyarrow's output stream would instead
    complete it at close, publishing the bytes sent so far after an error."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=UPLOAD_PART_BYTES,
        multipart_chunksize=UPLOAD_PART_BYTES,
        max_concurrency=2,
        use_threads=True,
    )
    logs.client.upload_file(str(local), logs.bucket, logs.key_of(path), Config=config)


def partition_path(logs: S3Logs, table: str, day: date) -> str:
    """The pyarrow path of one UTC day of `table`."""
    schema_for(table)
    return logs.path(table, f"{PARTITION_PREFIX}{day.isoformat()}")


def publish(logs: S3Logs, table: str, day: date, data: pa.Table) -> str:
    """Write `data` as a new file of `table`'s `day`; return its path."""
    path = f"{partition_path(logs, table, day)}/{new_file_name()}"
    put_whole(logs, path, parquet_bytes(data))
    return path


def _listing(logs: S3Logs, path: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    return [info for info in logs.fs.get_file_info(selector) if info.type == pafs.FileType.File]


def data_objects(logs: S3Logs, table: str) -> list[LogObject]:
    """Every published data file of `table` (inputs of a finished merge included), oldest first."""
    found = []
    for info in _listing(logs, logs.path(table)):
        folder, _, name = info.path.rpartition("/")
        partition = folder.rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or name.startswith(("_", ".")):
            continue
        if not partition.startswith(PARTITION_PREFIX):
            continue
        try:
            day = date.fromisoformat(partition.removeprefix(PARTITION_PREFIX))
        except ValueError:
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0.0
        found.append(LogObject(info.path, day, info.size or 0, mtime))
    return sorted(found, key=lambda o: (o.day, o.name))


def markers(logs: S3Logs, table: str) -> list[Marker]:
    """The merge markers of `table`."""
    found = []
    for info in _listing(logs, logs.path(REPLACED_DIR, table)):
        try:
            with logs.fs.open_input_stream(info.path) as stream:
                body = json.loads(stream.read())
        except FileNotFoundError:  # removed by maintenance meanwhile
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0.0
        found.append(Marker(info.path, body["merged"], tuple(body["replaces"]), mtime))
    return found


def write_marker(logs: S3Logs, table: str, merged: str, replaces: list[str]) -> str:
    """Record, before `merged` is written, that it replaces `replaces`; return the marker path."""
    name = merged.rsplit("/", 1)[-1]
    path = logs.path(REPLACED_DIR, table, f"{name}.json")
    body = json.dumps({"merged": merged, "replaces": replaces}).encode()
    put_whole(logs, path, pa.py_buffer(body))
    return path


def visible_objects(logs: S3Logs, table: str) -> list[LogObject]:
    """The files a reader counts: every data file but the inputs of a merge whose merged file
    is listed too (data listed before markers: see the module docstring)."""
    objects = data_objects(logs, table)
    listed = {o.path for o in objects}
    replaced = {
        path
        for marker in markers(logs, table)
        if marker.merged in listed
        for path in marker.replaces
    }
    return [o for o in objects if o.path not in replaced]


def delete_all(logs: S3Logs, paths: list[str]) -> None:
    """Delete objects, tolerating ones already gone."""
    for path in paths:
        try:
            logs.fs.delete_file(path)
        except FileNotFoundError:
            continue
