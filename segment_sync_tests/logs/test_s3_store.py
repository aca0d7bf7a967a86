"""Logs on S3 (`logs.dir: s3://bucket/prefix`): written by the LogWriter, read by the views,
the read-only SQL and the logbook, against a local S3 server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segment_sync.logs import logbook
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.read_only import NoLogsError, open_read_only, run_sql
from segment_sync.logs.s3_layout import data_objects
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.logs.views import ObjectStoreLogs, connect, ensure_analytics_db

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _messages(prefix: str, count: int, at: datetime = NOW) -> list[dict]:
    return [
        {"timestamp": at, "message_id": f"{prefix}-{i}", "outcome": "delivered"}
        for i in range(count)
    ]


def test_flushed_rows_land_as_one_parquet_object_per_day_under_the_prefix(s3_url: str) -> None:
    writer = LogWriter(s3_url)
    rows = _messages("a", 3) + _messages("b", 2, NOW - timedelta(days=1))
    written = writer.write("outbound_messages", rows)
    logs = S3Logs.parse(s3_url)
    keys = sorted(logs.key_of(o.path) for o in data_objects(logs, "outbound_messages"))
    assert len(written) == 2
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        "segment-sync/logs/outbound_messages/date=2026-12-05",
        "segment-sync/logs/outbound_messages/date=2026-12-06",
    ]


def test_the_views_read_the_objects_with_their_partition_day(s3_url: str) -> None:
    LogWriter(s3_url).write("outbound_messages", _messages("a", 4))
    with connect(s3_url) as con:
        rows = con.execute('SELECT "date", count(*) FROM outbound_messages GROUP BY ALL').fetchall()
        con.execute("SELECT * FROM daily_summary").fetchall()
    assert rows == [(NOW.date(), 4)]


def test_read_only_sql_reads_s3_and_refuses_writes(s3_url: str) -> None:
    LogWriter(s3_url).write("outbound_messages", _messages("a", 2))
    con = open_read_only(s3_url)
    try:
        assert run_sql(con, "SELECT count(*) FROM outbound_messages").fetchone() == (2,)
        with pytest.raises(ValueError, match="read-only"):
            run_sql(con, "COPY (SELECT 1) TO 'x.parquet'")
    finally:
        con.close()


def test_a_logbook_sees_rows_published_after_it_opened(s3_url: str) -> None:
    writer = LogWriter(s3_url)
    writer.write("outbound_messages", _messages("a", 2))
    with logbook.open(logs_dir=s3_url) as logs:
        first = logs.sql("SELECT count(*) AS n FROM outbound_messages")["n"].iloc[0]
        writer.write("outbound_messages", _messages("b", 3))
        second = logs.sql("SELECT count(*) AS n FROM outbound_messages")["n"].iloc[0]
    assert (first, second) == (2, 5)


def test_a_missing_bucket_is_one_line_naming_the_fix(s3_server) -> None:
    url = f"s3://no-such-bucket-{id(s3_server)}/logs?endpoint={s3_server.endpoint}"
    with pytest.raises(NoLogsError, match="check the bucket name") as raised:
        open_read_only(url)
    assert "\n" not in str(raised.value)


def test_an_upload_that_fails_is_reported_and_its_rows_stay_queued(s3_server) -> None:
    writer = LogWriter(f"s3://no-such-bucket-{id(s3_server)}/logs?endpoint={s3_server.endpoint}")
    writer.extend("outbound_messages", _messages("a", 2))
    with pytest.raises(LogWriteError, match="could not write outbound_messages rows"):
        writer.flush()
    assert writer.pending("outbound_messages") == 2


def test_there_is_no_shared_duckdb_file_for_s3_logs_and_the_error_says_what_to_use(
    s3_url: str,
) -> None:
    with pytest.raises(ObjectStoreLogs, match="segment-sync logs sql"):
        ensure_analytics_db(s3_url)


def test_a_failed_upload_never_shows_the_aws_secret(s3_server, monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-never-shown")
    writer = LogWriter(f"s3://no-such-bucket-{id(s3_server)}/logs?endpoint={s3_server.endpoint}")
    writer.extend("outbound_messages", _messages("a", 1))
    with pytest.raises(LogWriteError) as raised:
        writer.flush()
    assert "s3cret" not in str(raised.value) and "s3cret" not in repr(raised.value.cause)
