"""Unreadable Parquet log files: name one in a single line, find them all, move them aside.

A published log file is whole (written under a temporary name, then renamed into place), so a
`.parquet` file that cannot be read was damaged afterwards: a disk fault, a truncated copy, a
stray file. DuckDB reads the footer of every file of a table when a view is bound, so one such
file fails every query of that table. Moving it to `<logs.dir>/quarantine/` (outside the views'
glob, same filesystem, so the move is a rename) restores the queries and keeps the file for
inspection.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

from segment_sync.interruptions import reraise_interruption
from segment_sync.logs.layout import data_files, partition_dirs, summary_files
from segment_sync.logs.schema import TABLES

QUARANTINE_DIR = "quarantine"  # cli/logs_check.py names it in its help without importing this
_BATCH_ROWS = 10_000  # a deep check streams each file, so memory stays bounded
# A file DuckDB names in its error: quoted, ending in .parquet, not the views' glob.
# A data file or its summary (`<data file>.summary-<fingerprint>`), named in DuckDB's words.
_QUOTED_PARQUET = re.compile(r"""["']([^"'*?]+\.parquet(?:\.summary[-0-9a-f]*)?)["']""")


class UnreadableLogFile(RuntimeError):
    """A log file cannot be read; the message names it and the fix, in one line."""

    def __init__(self, path: Path, reason: str, others: int = 0) -> None:
        self.path, self.reason = path, reason
        more = (
            f" ({others} more unreadable: `segment-sync logs check` lists them)" if others else ""
        )
        super().__init__(
            f"log file {path} cannot be read ({reason}){more}; move it out of logs.dir, or run "
            "`segment-sync logs check --quarantine` to move every unreadable log file into "
            "logs.dir's quarantine/ folder (the other rows stay queryable)"
        )


def is_damage(exc: BaseException) -> bool:
    """Whether pyarrow's error means a damaged file (not a missing one or a refused open).
    pyarrow's S3 errors (a network failure, throttling, a denied or vanished key) carry no
    errno either, but name "AWS Error": the object may be fine, so they are no damage."""
    if isinstance(exc, pa.ArrowInvalid):
        return True
    return isinstance(exc, OSError) and exc.errno is None and "AWS Error" not in str(exc)


def read_problem(path: Path, *, deep: bool = False) -> str | None:
    """Why `path` cannot be read, or None: by pyarrow (which maintenance rewrites files with)
    and by DuckDB (which the views read them with; its parser refuses some footers pyarrow
    takes). `deep` reads every row, not only the footer, and validates it (UTF-8 strings)."""
    try:
        parquet = pq.ParquetFile(path)
        if deep:
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group).validate(full=True)
    except (pa.ArrowException, OSError) as exc:
        if not is_damage(exc):
            raise
        return _first_line(str(exc)) or type(exc).__name__
    return _shape_problem(path, parquet.schema_arrow) or _duckdb_problem(path, deep=deep)


def _shape(data_type: pa.DataType) -> str:
    """A column's shape: a list, a struct, a map or one value. Older files may hold another
    scalar type (the views cast it); a damaged footer can change the shape, which no cast mends."""
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return "a list"
    if pa.types.is_struct(data_type):
        return "a struct"
    if pa.types.is_map(data_type):
        return "a map"
    return "one value"


def _shape_problem(path: Path, schema: pa.Schema) -> str | None:
    """Why a data file's columns do not fit its table (a footer byte flipped can turn a list
    column into a struct, which reads whole but fails every view), or None."""
    table = TABLES.get(path.parent.parent.name)
    if table is None or not path.name.endswith(".parquet"):  # a summary, or not a log table
        return None
    for field in schema:
        expected = table.field(field.name).type if field.name in table.names else None
        if expected is not None and _shape(field.type) != _shape(expected):
            return (
                f"column {field.name} holds {_shape(field.type)} where {path.parent.parent.name} "
                f"has {_shape(expected)}: the file's footer is damaged"
            )
    return None


def _duckdb_problem(path: Path, *, deep: bool) -> str | None:
    """Why DuckDB cannot read `path` (its footer; with `deep`, every row), or None."""
    con = duckdb.connect()
    try:
        if deep:
            for _ in con.read_parquet(str(path)).to_arrow_reader(_BATCH_ROWS):
                pass
        else:
            con.sql("SELECT * FROM parquet_schema($path)", params={"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        reraise_interruption(exc)  # Ctrl-C stopped the read: no verdict on the file
        if not path.exists():  # merged or trimmed away meanwhile: gone, not damaged
            raise FileNotFoundError(errno.ENOENT, "log file gone meanwhile", str(path)) from None
        return _first_line(str(exc)) or type(exc).__name__
    finally:
        con.close()
    return None


class DamagedFile(Exception):
    """A file turned out unreadable while it was being read in full."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def read_in_batches(
    path: Path | str, max_bytes: int, filesystem: FileSystem | None = None
) -> Iterator[pa.RecordBatch]:
    """The rows of `path` a batch of about `max_bytes` at a time, each validated (strings that
    are not UTF-8 would make a file rewritten from them unreadable, good rows and all);
    DamagedFile if it cannot be read (perhaps after some batches were yielded).

    Why: a small file on disk can be many times bigger decoded (request bodies compress well),
    so reading it whole made a merge's memory depend on the files, not on a cap."""
    try:
        parquet = pq.ParquetFile(path, filesystem=filesystem)
        metadata = parquet.metadata
        per_row = max(
            (-(-group.total_byte_size // group.num_rows) for group in _row_groups(metadata)),
            default=1,
        )
        for batch in parquet.iter_batches(batch_size=max(1, max_bytes // max(per_row, 1))):
            batch.validate(full=True)
            yield batch
    except (pa.ArrowException, OSError) as exc:
        if is_damage(exc) and not isinstance(exc, FileNotFoundError):  # S3's has no errno
            raise DamagedFile(Path(path)) from exc
        raise


def _row_groups(metadata: pq.FileMetaData) -> Iterator[pq.RowGroupMetaData]:
    """The row groups of a file that hold rows."""
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        if group.num_rows:
            yield group


def row_count(path: Path) -> int:
    """Rows in `path` by its footer; 0 when the footer cannot be read."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        if is_damage(exc):
            return 0
        raise


def keep_readable(logs_dir: Path | str, files: list[Path], moved: list[Path]) -> list[Path]:
    """The `files` whose footer reads; the others are quarantined (appended to `moved`)."""
    readable = []
    for path in files:
        if read_problem(path) is None:
            readable.append(path)
        else:
            moved.append(quarantine(logs_dir, path))
    return readable


def log_files(logs_dir: Path | str) -> list[Path]:
    """Every published data file of every log table, and every data file's summary (a damaged
    one fails daily_summary as a damaged data file fails its table's view)."""
    return [
        path
        for table in TABLES
        for directory in partition_dirs(logs_dir, table)
        for path in [*data_files(directory), *summary_files(directory)]
    ]


def unreadable_files(logs_dir: Path | str, *, deep: bool = False) -> list[tuple[Path, str]]:
    """The log files that cannot be read, with why."""
    found = []
    for path in log_files(logs_dir):
        try:
            problem = read_problem(path, deep=deep)
        except FileNotFoundError:  # compacted or trimmed away meanwhile
            continue
        if problem is not None:
            found.append((path, problem))
    return found


def quarantine(logs_dir: Path | str, path: Path) -> Path:
    """Move `path` to `<logs_dir>/quarantine/<table>/<partition>/`, out of every view."""
    root = Path(logs_dir).resolve()
    relative = path.resolve().relative_to(root)
    target = root / QUARANTINE_DIR / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def explain(
    error: Exception, logs_dir: Path | str | None = None, *, inside: Path | None = None
) -> UnreadableLogFile | None:
    """The unreadable log file behind a DuckDB error: the file the error names (only one
    under `inside`, if given), else (with `logs_dir`) the first that cannot be read; None
    when no log file is to blame."""
    text = str(error)
    for match in _QUOTED_PARQUET.finditer(text):
        path = Path(match.group(1))
        if not path.is_file() or (inside is not None and not path.resolve().is_relative_to(inside)):
            continue
        try:
            reason = read_problem(path, deep=True)
        except FileNotFoundError:  # merged or trimmed away since DuckDB met it: no damage
            continue
        except OSError:  # it cannot even be opened (permissions): DuckDB's words say why
            reason = _first_line(text.split(":", 1)[-1])
        if reason is not None:
            return UnreadableLogFile(path, reason)
        # It reads whole now: not damaged (DuckDB met it while it was being published or merged).
    if logs_dir is None:
        return None
    # The footers first (what binding a view reads); a damaged page needs every file read.
    found = unreadable_files(logs_dir) or unreadable_files(logs_dir, deep=True)
    if not found:
        return None
    (path, reason), *others = found
    return UnreadableLogFile(path, reason, len(others))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""
