"""The analysts' Python API: the logs of real runs as pandas DataFrames, read-only."""

from __future__ import annotations

import multiprocessing
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from segment_sync.logs import logbook
from segment_sync.logs.filters import FilterError
from segment_sync.logs.read_only import LogsSQLError, NoLogsError
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import ensure_analytics_db
from segment_sync_tests.logs import real_run_logs as runs
from segment_sync_tests.logs.real_run_logs import PROFILE_CUSTOMERS, TRACKED_CUSTOMERS, RealRunLogs

real_run_logs = runs.real_run_logs  # the fixture

OUTBOUND_COLUMNS = [
    "timestamp",
    "customer_id",
    "event_type",
    "status_code",
    "response_time_s",
    "error",
    "identifier",
]
INBOUND_COLUMNS = [
    "timestamp",
    "customer_id",
    "action",
    "status",
    "event_id",
    "error",
    "identifier",
]
CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT_S = 120.0
WRITER_BATCHES = 20
WRITER_ROWS = 50


@pytest.fixture
def logs(real_run_logs: RealRunLogs):
    with logbook.open(real_run_logs.settings) as opened:
        yield opened


def test_outbound_filter_in_the_manuals_wording_returns_a_dataframe(logs) -> None:
    failed = logs.outbound("Event type is in track and Status code is not 200")

    assert isinstance(failed, pd.DataFrame)
    assert len(failed) == 1
    row = failed.iloc[0]
    assert (row.event_type, row.status_code, row.attempt) == ("track", 503, 1)
    assert row.error.startswith("HTTP 503")
    assert list(row.customer_ids) == TRACKED_CUSTOMERS


def test_outbound_rows_come_newest_first_with_the_manuals_columns_first(logs) -> None:
    requests = logs.outbound()

    assert list(requests.columns[:7]) == OUTBOUND_COLUMNS
    assert {"customer_ids", "run_id", "message_count", "endpoint"} <= set(requests.columns)
    assert str(requests["timestamp"].dtype) == "datetime64[us, UTC]"
    assert requests["timestamp"].is_monotonic_decreasing
    assert list(requests[["event_type", "status_code"]].itertuples(index=False, name=None)) == [
        ("identify", 200),
        ("track", 200),
        ("track", 503),
    ]
    assert requests["message_count"].tolist() == [len(PROFILE_CUSTOMERS), 12, 12]


def test_bodies_are_left_out_unless_asked_for(logs) -> None:
    assert "request_body" not in logs.outbound().columns
    with_bodies = logs.outbound("Event type is identify", bodies=True)
    assert with_bodies.columns[-2:].tolist() == ["request_body", "response_body"]
    assert all(c in with_bodies.iloc[0].request_body for c in PROFILE_CUSTOMERS)


def test_inbound_filter_matches_each_event_of_a_request(logs) -> None:
    never_delivered = logs.inbound("Status is in error, skipped")
    identify = logs.inbound("Event type is in identify")

    assert list(never_delivered.columns[:7]) == INBOUND_COLUMNS
    assert sorted(never_delivered["message_id"]) == ["wh-2", "wh-3"]
    error = never_delivered.set_index("message_id").loc["wh-2"]
    assert (error.customer_id, error.status_code) == ("c-999", 404)
    assert error.error.startswith("Customer not found")
    assert identify[["message_id", "action", "status"]].values.tolist() == [
        ["wh-1", "profile", "success"]
    ]


def test_since_and_until_take_the_clis_text_or_datetimes(logs) -> None:
    times = logs.outbound()["timestamp"].sort_values().tolist()  # 503, 200, identify
    middle = times[1].to_pydatetime()

    assert len(logs.outbound(since="1h")) == 3
    assert logs.outbound(since=middle)["event_type"].tolist() == ["identify", "track"]
    assert logs.outbound(until=middle)["status_code"].tolist() == [503]
    assert len(logs.outbound(until=middle.date())) == 3  # a bare date includes that day
    empty = logs.outbound(since=datetime.now(UTC) + timedelta(hours=1))
    assert empty.empty and list(empty.columns[:7]) == OUTBOUND_COLUMNS


def test_limit_keeps_the_newest_rows(logs) -> None:
    assert logs.outbound(limit=1)["event_type"].tolist() == ["identify"]
    assert len(logs.outbound(limit=0)) == 0
    with pytest.raises(ValueError, match="limit must be a whole number"):
        logs.outbound(limit=-1)


def test_a_bad_filter_raises_filter_error_naming_the_problem(logs) -> None:
    assert logbook.FilterError is FilterError and logbook.LogsSQLError is LogsSQLError
    with pytest.raises(FilterError, match="unknown field 'Colour'; outbound log fields"):
        logs.outbound("Colour is red")
    with pytest.raises(FilterError, match="cannot read time 'yesterday'"):
        logs.inbound(since="yesterday")


def test_sql_answers_with_a_dataframe_and_takes_parameters(logs) -> None:
    runs = logs.sql(
        "SELECT job, status, messages_sent, messages_failed FROM sync_runs WHERE status = ?",
        ["failure"],
    )
    summary = logs.sql(
        "SELECT * FROM daily_summary WHERE direction = $d ORDER BY type", {"d": "outbound"}
    )

    assert runs.values.tolist() == [["inbound_ingest_job", "failure", 1, 1]]
    assert summary[["type", "requests", "messages", "delivered", "errors"]].values.tolist() == [
        ["identify", 1, 3, 3, 0],
        ["track", 2, 12, 12, 1],
    ]


def test_sql_refuses_writes_and_names_sql_errors_on_one_line(logs, real_run_logs) -> None:
    target = real_run_logs.logs_dir / "outbound_log" / "injected.parquet"
    with pytest.raises(LogsSQLError, match="refused: the logs are read-only and COPY"):
        logs.sql(f"COPY (SELECT * FROM outbound_log) TO '{target}'")
    with pytest.raises(LogsSQLError, match="read-only mode") as create:
        logs.sql("CREATE TABLE copy_of_runs AS SELECT * FROM sync_runs")
    with pytest.raises(LogsSQLError, match='Referenced column "nope" not found') as unknown:
        logs.sql("SELECT nope FROM sync_runs")
    assert "\n" not in str(create.value) + str(unknown.value)
    assert not target.exists()
    assert len(logs.outbound()) == 3


def test_sql_chunks_hand_a_big_result_over_in_pieces(logs) -> None:
    chunks = list(logs.sql_chunks("SELECT range AS n FROM range(5000)", chunk_rows=2048))
    assert [len(chunk) for chunk in chunks] == [2048, 2048, 904]
    assert pd.concat(chunks)["n"].tolist() == list(range(5000))


def test_open_reads_the_settings_from_the_environment_or_a_logs_dir(real_run_logs) -> None:
    """write_settings sets $SEGMENT_SYNC_SETTINGS, as the CLI reads it."""
    with logbook.open() as from_env, logbook.open(logs_dir=real_run_logs.logs_dir) as direct:
        assert from_env.logs_dir == direct.logs_dir == real_run_logs.logs_dir.resolve()
        assert len(from_env.inbound()) == len(direct.inbound()) == 3
        assert direct.views == [
            "outbound_log", "outbound_messages", "inbound_log", "inbound_items", "sync_runs",
            "daily_summary",
        ]  # fmt: skip
    with pytest.raises(ValueError, match="not both"):
        logbook.open(real_run_logs.settings, logs_dir=real_run_logs.logs_dir)


def test_open_without_logs_says_so_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoLogsError, match="no logs yet"):
        logbook.open(logs_dir=tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


# ---------------------------------------------------------------------------------------------
# A writer beside a DataFrame being read
# ---------------------------------------------------------------------------------------------


def write_like_a_run(logs_dir: str, results: Any) -> None:
    """What a run does to the logs: publish batches of rows, then refresh the analysts' file."""
    try:
        writer = LogWriter(logs_dir)
        for batch in range(WRITER_BATCHES):
            now = datetime.now(UTC)
            writer.write(
                "outbound_messages",
                [
                    {"timestamp": now, "message_id": f"new-{batch}-{n}", "outcome": "delivered"}
                    for n in range(WRITER_ROWS)
                ],
            )
        ensure_analytics_db(logs_dir)
        results.put(("ok", WRITER_BATCHES * WRITER_ROWS))
    except Exception:
        results.put(("error", traceback.format_exc()))


def test_a_writer_writes_while_a_dataframe_is_being_read(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    old = [
        {"timestamp": datetime.now(UTC), "message_id": f"old-{n:05}", "outcome": "delivered"}
        for n in range(6000)
    ]
    LogWriter(logs_dir).write("outbound_messages", old)
    ensure_analytics_db(logs_dir)
    results = CTX.Queue()
    writer = CTX.Process(target=write_like_a_run, args=(str(logs_dir), results))

    with logbook.open(logs_dir=logs_dir) as logs:
        chunks = logs.sql_chunks("SELECT message_id FROM outbound_messages", chunk_rows=2048)
        being_read = [next(chunks)]  # the DataFrame is half read: its query is running
        writer.start()
        try:
            status, written = results.get(timeout=JOIN_TIMEOUT_S)
        finally:
            writer.join(timeout=JOIN_TIMEOUT_S)
            if writer.is_alive():
                writer.terminate()
        being_read.extend(chunks)
        read = pd.concat(being_read)
        after = logs.sql("SELECT count(*) AS n FROM outbound_messages")["n"].item()

    assert status == "ok", written
    assert writer.exitcode == 0 and written == WRITER_BATCHES * WRITER_ROWS
    assert sorted(read["message_id"]) == [row["message_id"] for row in old]  # whole, as it began
    assert after == len(old) + written  # the same logbook sees the new rows at once
