"""The analysts' views over logs on S3, without DuckDB's httpfs extension.

DuckDB reads `s3://` only through its httpfs extension, which it downloads on first use; the
wheel does not bundle it and this project may run where nothing can be downloaded. So the files
are listed and read by pyarrow (the same S3 filesystem the writers use) and each table is handed
to DuckDB as a pyarrow dataset under the view's name: DuckDB scans it with projection and filter
push-down, so `WHERE "date" >= ...` skips whole partitions. The dataset holds the files listed
when it was registered, minus the inputs of finished merges (s3_layout.visible_objects); `refresh`
lists again, so a long-lived session sees new rows.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import visible_objects
from segment_sync.logs.schema import TABLES

_PARTITION = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


def view_schema(table: str) -> pa.Schema:
    """The table's columns (all nullable: an older file may lack one) and its `date`."""
    fields = [field.with_nullable(True) for field in TABLES[table]]
    return pa.schema([*fields, pa.field("date", pa.date32())])


def dataset(logs: S3Logs, table: str) -> ds.Dataset:
    """The rows of `table` a reader counts now, as a pyarrow dataset."""
    schema = view_schema(table)
    paths = [obj.path for obj in visible_objects(logs, table)]
    if not paths:
        return ds.dataset(schema.empty_table())
    return ds.dataset(
        paths,
        schema=schema,
        format="parquet",
        filesystem=logs.fs,
        partitioning=_PARTITION,
        partition_base_dir=logs.path(table),
    )


def refresh(con: duckdb.DuckDBPyConnection, logs: S3Logs) -> None:
    """(Re)register every table's dataset on `con`, listing the files again."""
    for table in TABLES:
        con.register(table, dataset(logs, table))


def register_views(con: duckdb.DuckDBPyConnection, logs: S3Logs) -> None:
    """Define the log views (temporary: they live in this connection) on `con`."""
    from segment_sync.logs.views import DAILY_SUMMARY_SQL

    refresh(con, logs)
    con.execute(DAILY_SUMMARY_SQL.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW"))


def require_bucket(logs: S3Logs) -> None:
    """OSError naming the bucket and the fix when it cannot be listed (missing, no access)."""
    try:
        if logs.fs.get_file_info(logs.bucket).type == pafs.FileType.NotFound:
            raise OSError("the bucket does not exist")
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OSError(
            f"cannot read logs.dir {logs.url.split('?')[0]}: {reason}; check the bucket name, "
            "the endpoint and the AWS credentials in the environment"
        ) from None
