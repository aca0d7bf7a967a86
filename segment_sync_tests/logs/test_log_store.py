"""The log store: rows written as Parquet files are readable through DuckDB views."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.logs.views import ANALYTICS_DB_NAME, connect, ensure_analytics_db, view_sql
from segment_sync_tests.disks import fill_disk

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
FILE_NAME = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{32}\.parquet$")


def outbound_request(**overrides: Any) -> dict[str, Any]:
    """A complete outbound_log row."""
    row = {
        "timestamp": T0,
        "customer_id": "c1",
        "customer_ids": ["c1"],
        "event_type": "track",
        "status_code": 200,
        "response_time_s": 0.25,
        "error": None,
        "identifier": "req-1",
        "run_id": "run-1",
        "stream": "events",
        "attempt": 1,
        "message_count": 1,
        "request_bytes": 512,
        "region": "us",
        "endpoint": "https://api.segment.io/v1/batch",
        "request_body": '{"batch": []}',
        "response_body": '{"success": true}',
    }
    return {**row, **overrides}


def inbound_request(**overrides: Any) -> dict[str, Any]:
    """A minimal inbound_log row."""
    row = {
        "timestamp": T0,
        "customer_id": "c1",
        "action": "purchase",
        "status": "success",
        "status_code": 200,
        "response_time_s": 0.1,
        "event_count": 1,
    }
    return {**row, **overrides}


def message(message_id: str, **overrides: Any) -> dict[str, Any]:
    """A minimal outbound_messages row."""
    row = {"timestamp": T0, "message_id": message_id, "outcome": "delivered", "event_type": "track"}
    return {**row, **overrides}


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The single value a query returns."""
    return con.execute(sql).fetchone()[0]


def test_rows_written_are_readable_through_the_views(tmp_path: Path) -> None:
    rows = [
        outbound_request(),
        outbound_request(
            customer_id=None,
            customer_ids=["c2", "c3"],
            event_type="identify",
            status_code=None,
            error="connection refused",
            identifier="req-2",
        ),
    ]
    LogWriter(tmp_path).write("outbound_log", rows)

    with connect(tmp_path) as con:
        got = con.execute(
            "SELECT timestamp, customer_id, customer_ids, event_type, status_code, error, "
            "identifier, date FROM outbound_log ORDER BY identifier"
        ).fetchall()

    assert got == [
        (T0, "c1", ["c1"], "track", 200, None, "req-1", date(2024, 3, 1)),
        (T0, None, ["c2", "c3"], "identify", None, "connection refused", "req-2", date(2024, 3, 1)),
    ]


def test_every_view_has_its_schema_columns_in_order_then_the_date(tmp_path: Path) -> None:
    with connect(tmp_path) as con:
        for table, schema in TABLES.items():
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert columns == [*schema.names, "date"], table


def test_views_work_before_any_row_is_written(tmp_path: Path) -> None:
    with connect(tmp_path) as con:
        counts = {name: scalar(con, f"SELECT count(*) FROM {name}") for name in TABLES}
        summary = con.execute("SELECT * FROM daily_summary").fetchall()

    assert counts == dict.fromkeys(TABLES, 0)
    assert summary == []


def test_views_keep_declared_types_before_any_row_is_written(tmp_path: Path) -> None:
    with connect(tmp_path) as con:
        types = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE outbound_log)").fetchall()
        )

    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["customer_ids"] == "VARCHAR[]"
    assert types["status_code"] == "INTEGER"
    assert types["date"] == "DATE"


def test_analysts_file_holds_views_that_see_rows_written_after_it_was_opened(
    tmp_path: Path,
) -> None:
    path = ensure_analytics_db(tmp_path)
    with duckdb.connect(str(path), read_only=True) as analyst:
        before = scalar(analyst, "SELECT count(*) FROM outbound_messages")
        LogWriter(tmp_path).write("outbound_messages", [message("m1"), message("m2")])
        after = scalar(analyst, "SELECT count(*) FROM outbound_messages")

    assert path == tmp_path.resolve() / ANALYTICS_DB_NAME
    assert (before, after) == (0, 2)


def test_analysts_file_works_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = ensure_analytics_db("logs")
    LogWriter("logs").write("outbound_messages", [message("m1")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    with duckdb.connect(str(path), read_only=True) as analyst:
        assert scalar(analyst, "SELECT count(*) FROM outbound_messages") == 1
    assert all(str(tmp_path.resolve() / "logs") in sql for sql in view_sql("../logs")[:-1])


def test_analysts_file_opens_in_duckdb_clients_from_1_0_on(tmp_path: Path) -> None:
    path = ensure_analytics_db(tmp_path)

    with duckdb.connect(str(path), read_only=True) as analyst:
        tags = scalar(
            analyst, f"SELECT tags FROM duckdb_databases() WHERE path = '{path.as_posix()}'"
        )
    assert tags["storage_version"] == "v1.0.0+"


def test_refreshing_the_analysts_file_twice_is_harmless(tmp_path: Path) -> None:
    ensure_analytics_db(tmp_path)
    LogWriter(tmp_path).write("sync_runs", [{"run_id": "r1", "job": "outbound", "started_at": T0}])
    path = ensure_analytics_db(tmp_path)

    with duckdb.connect(str(path), read_only=True) as analyst:
        assert scalar(analyst, "SELECT count(*) FROM sync_runs") == 1


HOLDER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("open", flush=True)
for line in sys.stdin:  # one query per line, answered with its first value
    print(con.execute(line).fetchone()[0], flush=True)
"""


def open_holder(path: Path, mode: str) -> subprocess.Popen:
    """An analyst's DuckDB session in another process, holding `path` open (`ro` or `rw`)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "open"
    return holder


def ask(holder: subprocess.Popen, sql: str) -> str:
    holder.stdin.write(sql + "\n")
    holder.stdin.flush()
    return holder.stdout.readline().strip()


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_refreshing_views_succeeds_while_an_analyst_holds_the_file_and_they_keep_querying(
    tmp_path: Path, mode: str
) -> None:
    path = ensure_analytics_db(tmp_path)
    holder = open_holder(path, mode)
    try:
        LogWriter(tmp_path).write(
            "sync_runs", [{"run_id": "r1", "job": "outbound", "started_at": T0}]
        )
        assert ensure_analytics_db(tmp_path) == path
        # The open session keeps its snapshot of the views, which read the live Parquet files.
        assert ask(holder, "SELECT count(*) FROM sync_runs") == "1"
        with duckdb.connect(str(path), read_only=True) as newcomer:
            assert scalar(newcomer, "SELECT count(*) FROM sync_runs") == 1
    finally:
        holder.communicate(input="", timeout=30)
    assert holder.returncode == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unknown_column_is_rejected_naming_table_column_and_expected_columns(
    tmp_path: Path,
) -> None:
    writer = LogWriter(tmp_path)

    with pytest.raises(ValueError) as raised:
        writer.append("outbound_log", outbound_request(status=200))

    text = str(raised.value)
    assert "outbound_log" in text
    assert "'status'" in text
    assert "status_code" in text and "response_time_s" in text  # the expected columns


def test_missing_required_column_is_rejected_naming_it(tmp_path: Path) -> None:
    row = outbound_request()
    del row["event_type"]

    with pytest.raises(ValueError, match=r"outbound_log: missing column 'event_type'"):
        LogWriter(tmp_path).append("outbound_log", row)


def test_unknown_table_is_rejected_naming_the_known_tables(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown log table 'outbound'.*outbound_log"):
        LogWriter(tmp_path).append("outbound", {})


def test_value_of_the_wrong_type_is_rejected_naming_the_column(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.append("outbound_log", outbound_request(status_code="200 OK"))

    with pytest.raises(ValueError, match=r"outbound_log\.status_code: expected int32"):
        writer.flush()


def test_value_outside_a_closed_vocabulary_is_rejected_naming_the_column(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"outbound_log\.event_type: 'Track' is not one of"):
        LogWriter(tmp_path).write("outbound_log", [outbound_request(event_type="Track")])


def test_a_malformed_batch_does_not_lose_rows_queued_for_other_tables(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.append("outbound_log", outbound_request(attempt="first"))
    writer.append("outbound_messages", message("m1"))

    with pytest.raises(ValueError, match=r"outbound_log\.attempt.*1 queued outbound_log row"):
        writer.flush()
    writer.flush()

    with connect(tmp_path) as con:
        assert scalar(con, "SELECT count(*) FROM outbound_messages") == 1
        assert scalar(con, "SELECT count(*) FROM outbound_log") == 0


def test_null_in_a_required_column_is_rejected_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"outbound_messages\.message_id: required"):
        LogWriter(tmp_path).write("outbound_messages", [message(None)])


def test_nullable_columns_may_be_omitted(tmp_path: Path) -> None:
    LogWriter(tmp_path).write("inbound_items", [{"timestamp": T0, "outcome": "no_match"}])

    with connect(tmp_path) as con:
        got = con.execute("SELECT outcome, buffer_item_id, error FROM inbound_items").fetchall()
    assert got == [("no_match", None, None)]


def test_rows_land_in_the_partition_of_their_utc_date_under_unique_final_names(
    tmp_path: Path,
) -> None:
    late_evening_in_new_york = datetime(2024, 3, 1, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    rows = [message("m1", timestamp=T0), message("m2", timestamp=late_evening_in_new_york)]
    files = LogWriter(tmp_path).write("outbound_messages", rows)

    partitions = sorted(path.parent.name for path in files)
    assert partitions == ["date=2024-03-01", "date=2024-03-02"]
    assert all(FILE_NAME.match(path.name) for path in files)
    assert not list(tmp_path.rglob("*.tmp"))


def test_files_are_zstd_compressed(tmp_path: Path) -> None:
    [path] = LogWriter(tmp_path).write("outbound_messages", [message("m1")])

    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_flush_writes_one_file_per_table_with_pending_rows(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.append("outbound_messages", message("m1"))
    writer.extend("outbound_messages", [message("m2"), message("m3")])
    writer.append("inbound_log", inbound_request())

    files = writer.flush()

    assert sorted(path.parent.parent.name for path in files) == ["inbound_log", "outbound_messages"]
    assert writer.flush() == []
    assert writer.pending("outbound_messages") == 0


def test_writer_used_as_context_manager_flushes_on_exit(tmp_path: Path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append("outbound_messages", message("m1"))

    with connect(tmp_path) as con:
        assert scalar(con, "SELECT count(*) FROM outbound_messages") == 1


def test_one_writer_shared_by_threads_loses_no_row(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)

    def work(thread: int) -> None:
        for i in range(500):
            writer.append("outbound_messages", message(f"t{thread}-{i}"))
            if i % 50 == 0:
                writer.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    writer.flush()

    with connect(tmp_path) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbound_messages"
        ).fetchone()
    assert (total, distinct) == (4000, 4000)


def test_columns_added_to_the_schema_later_read_as_null_for_older_files(tmp_path: Path) -> None:
    LogWriter(tmp_path)  # lays out the current schema files
    old_schema = pa.schema([f for f in TABLES["outbound_log"] if f.name != "region"])
    old_rows = pa.Table.from_pylist([outbound_request(identifier="old")], schema=old_schema)
    partition = tmp_path / "outbound_log" / "date=2024-03-01"
    partition.mkdir(parents=True)
    pq.write_table(old_rows, partition / "20240301T000000000000Z-old.parquet")
    LogWriter(tmp_path).write("outbound_log", [outbound_request(identifier="new", region="eu")])

    with connect(tmp_path) as con:
        got = con.execute("SELECT identifier, region FROM outbound_log ORDER BY 1").fetchall()
    assert got == [("new", "eu"), ("old", None)]


def test_daily_summary_counts_requests_messages_errors_and_response_percentiles(
    tmp_path: Path,
) -> None:
    day2 = T0 + timedelta(days=1)
    writer = LogWriter(tmp_path)
    writer.extend(
        "outbound_log",
        [outbound_request(response_time_s=t, message_count=10) for t in (0.1, 0.2, 0.3, 0.4, 1.4)],
    )
    writer.extend(
        "outbound_log",
        [
            outbound_request(
                event_type="track", status_code=500, error="boom", response_time_s=2.0
            ),
            outbound_request(event_type="identify", message_count=3, response_time_s=0.5),
            outbound_request(event_type="identify", status_code=None, response_time_s=None),
            outbound_request(timestamp=day2, message_count=7, response_time_s=0.3),
            # Segment's 200-with-drop: an answer, but an error all the same.
            outbound_request(timestamp=day2, error="dropped: too large", response_time_s=0.5),
        ],
    )
    writer.extend(
        "inbound_log",
        [
            # One row per event: request r2 carried two events.
            inbound_request(identifier="r1", response_time_s=0.1),
            inbound_request(identifier="r2", response_time_s=0.3, event_count=2),
            inbound_request(identifier="r2", response_time_s=0.3, event_count=2),
            inbound_request(
                identifier="r3",
                status="error",
                status_code=422,
                error="invalid",
                response_time_s=0.2,
            ),
        ],
    )
    writer.extend(
        "outbound_messages",
        [
            *message_rows("track", delivered=5, failed=1),
            *message_rows("identify", delivered=1, pending=2, skipped=4),
            *message_rows("track", day2, delivered=3),
        ],
    )
    writer.flush()

    with connect(tmp_path) as con:
        got = con.execute("SELECT * FROM daily_summary").fetchall()

    d1, d2 = date(2024, 3, 1), date(2024, 3, 2)
    approx = pytest.approx
    # day, direction, type, requests, messages, delivered, failed, pending, errors, p50, p95
    assert got == [
        (d1, "inbound", "purchase", 3, 4, 3, 1, 0, 1, approx(0.25), approx(0.3)),
        (d1, "outbound", "identify", 2, 3, 1, 0, 2, 1, approx(0.5), approx(0.5)),
        (d1, "outbound", "track", 6, 6, 5, 1, 0, 1, approx(0.35), approx(1.85)),
        (d2, "outbound", "track", 2, 3, 3, 0, 0, 1, approx(0.4), approx(0.49)),
    ]


def message_rows(event_type: str, at: datetime = T0, **outcomes: int) -> list[dict[str, Any]]:
    """outbound_messages rows at `at`, one message each, e.g. delivered=5, failed=1."""
    return [
        {"timestamp": at, "message_id": f"{event_type}-{outcome}-{i}-{at:%d}",
         "event_type": event_type, "outcome": outcome}
        for outcome, count in outcomes.items()
        for i in range(count)
    ]  # fmt: skip


def test_daily_summary_counts_a_message_failed_in_an_outage_once_as_delivered(
    write_settings, segment_standin
) -> None:
    from segment_sync import factory
    from segment_sync.loyalty.records import Stream
    from segment_sync.outbound.results import OutboundFailed
    from segment_sync_tests.conftest import WRITE_KEY
    from segment_sync_tests.outbound.syncs import thirty_events_and_a_one_request_outage

    _, settings = thirty_events_and_a_one_request_outage(write_settings, segment_standin)
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))

    def summary() -> list[tuple]:
        with connect(settings.logs.dir) as con:
            return con.execute(
                "SELECT direction, type, sum(requests), sum(messages), sum(delivered), "
                "sum(failed), sum(pending), sum(errors) FROM daily_summary GROUP BY ALL"
            ).fetchall()  # summed over days: the two runs may straddle midnight

    with pytest.raises(OutboundFailed):
        sync.run(Stream.EVENTS, "run-during-outage")
    assert summary() == [("outbound", "track", 1, 30, 0, 0, 30, 1)]
    sync.run(Stream.EVENTS, "run-after-outage")
    assert summary() == [("outbound", "track", 2, 30, 30, 0, 0, 1)]


def test_a_logs_dir_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "logs"
    not_a_folder.write_text("oops")
    with pytest.raises(LogWriteError) as raised:
        LogWriter(not_a_folder)
    assert f"logs.dir ({not_a_folder})" in str(raised.value)
    assert "writable folder" in str(raised.value)


def test_a_full_disk_is_one_clear_error_and_the_rows_wait_for_the_next_flush(
    small_tmpfs: Path,
) -> None:
    writer = LogWriter(small_tmpfs / "logs")
    filler = fill_disk(small_tmpfs)
    writer.extend("outbound_messages", [message(f"m{i}") for i in range(2000)])
    with pytest.raises(LogWriteError) as raised:
        writer.flush()
    assert "No space left on device" in str(raised.value)
    assert writer.pending("outbound_messages") == 2000

    filler.unlink()
    writer.flush()
    with connect(small_tmpfs / "logs") as con:
        assert scalar(con, "SELECT count(DISTINCT message_id) FROM outbound_messages") == 2000


def test_daily_summary_percentiles_are_exactly_those_of_quantile_cont(tmp_path: Path) -> None:
    times = [0.001 * (i * 7919 % 1009) + 0.1 for i in range(1, 400)]  # scattered, no ties
    writer = LogWriter(tmp_path)
    writer.extend("outbound_log", [outbound_request(response_time_s=t) for t in times])
    writer.extend("inbound_log", [inbound_request(response_time_s=t) for t in times[:37]])
    writer.flush()

    with connect(tmp_path) as con:
        got = con.execute(
            "SELECT direction, p50_response_time_s, p95_response_time_s FROM daily_summary"
        ).fetchall()
        want = [
            (
                direction,
                *con.execute(
                    "SELECT quantile_cont(response_time_s, 0.5), quantile_cont(response_time_s, 0.95) "
                    f"FROM {direction}_log"
                ).fetchone(),
            )
            for direction in ("inbound", "outbound")
        ]

    assert got == want  # equal, not approximately: the view must not change a figure
