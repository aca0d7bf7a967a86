"""`segment-sync logs sql`: read-only SQL over the logs of real runs, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import re
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from segment_sync.cli import main
from segment_sync.logs.read_only import VIEWS
from segment_sync.logs.store import LogWriter
from segment_sync_tests.logs import real_run_logs as runs
from segment_sync_tests.logs.real_run_logs import TRACKED_CUSTOMERS, RealRunLogs

real_run_logs = runs.real_run_logs  # the fixture
CTX = multiprocessing.get_context("spawn")
DEADLINE_S = 120.0  # a safety net on a busy machine, not a speed check
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def sql(logs: RealRunLogs, *args: str, stdin: str | None = None) -> Result:
    """`segment-sync logs sql --settings <the runs' settings> ARGS`."""
    return CliRunner().invoke(main, ["logs", "sql", "--settings", str(logs.settings), *args], stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def test_table_aligns_columns_and_right_aligns_numbers(real_run_logs: RealRunLogs) -> None:
    query = (
        "SELECT event_type, status_code, message_count, left(error, 8) AS error "
        "FROM outbound_log ORDER BY timestamp"
    )
    assert ok(sql(real_run_logs, query)).splitlines() == [
        "event_type  status_code  message_count  error",
        "----------  -----------  -------------  --------",
        "track               503             12  HTTP 503",
        "track               200             12  -",
        "identify            200              3  -",
    ]


def test_table_shows_utc_times_as_the_other_logs_commands_do(real_run_logs: RealRunLogs) -> None:
    lines = ok(sql(real_run_logs, "SELECT job, started_at FROM sync_runs ORDER BY started_at"))
    rows = lines.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["outbound_sync_job", "inbound_ingest_job"]
    assert all(re.search(r"  \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$", row) for row in rows)


def test_csv_has_a_header_and_empty_cells_for_null(real_run_logs: RealRunLogs) -> None:
    query = (
        "SELECT message_id, outcome, antavo_event_id IS NOT NULL AS registered, error "
        "FROM inbound_items ORDER BY buffer_item_id"
    )
    records = list(csv.reader(io.StringIO(ok(sql(real_run_logs, "--format", "csv", query)))))
    assert records == [
        ["message_id", "outcome", "registered", "error"],
        ["wh-1", "done", "true", ""],
        ["wh-2", "failed", "false", "Customer not found (NotFoundException 160212)"],
        ["wh-3", "no_match", "false", "no enabled mapping's trigger matched this event"],
    ]


def test_json_is_an_array_of_objects_with_iso_times_and_lists(real_run_logs: RealRunLogs) -> None:
    query = (
        "SELECT timestamp, customer_ids, status_code, attempt "
        "FROM outbound_log WHERE status_code = 503"
    )
    out = ok(sql(real_run_logs, "--format", "json", query))
    rows = json.loads(out)
    assert out == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    assert [sorted(row) for row in rows] == [
        ["attempt", "customer_ids", "status_code", "timestamp"]
    ]
    assert rows[0]["customer_ids"] == TRACKED_CUSTOMERS
    assert (rows[0]["status_code"], rows[0]["attempt"]) == (503, 1)
    assert ISO_UTC.fullmatch(rows[0]["timestamp"])
    assert (
        ok(sql(real_run_logs, "--format", "json", "SELECT * FROM sync_runs WHERE false")) == "[]\n"
    )


def test_json_holds_every_duckdb_type_as_strict_json(real_run_logs: RealRunLogs) -> None:
    query = (
        "SELECT 2.50::DECIMAL(4,2) AS price, DATE '2026-11-28' AS day, INTERVAL 90 MINUTE AS took, "
        "'\\xAA'::BLOB AS raw, {'code': 404, 'ids': ['a']} AS detail, 'inf'::DOUBLE AS inf, "
        "'nan'::DOUBLE AS nan, NULL AS nothing, 1 AS n, 2 AS n"
    )

    def reject(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    (row,) = json.loads(ok(sql(real_run_logs, "--format", "json", query)), parse_constant=reject)
    assert row == {
        "price": 2.5,
        "day": "2026-11-28",
        "took": "1:30:00",
        "raw": "qg==",
        "detail": {"code": 404, "ids": ["a"]},
        "inf": "inf",
        "nan": "nan",
        "nothing": None,
        "n": 1,
        "n_1": 2,
    }


def test_the_sql_can_come_from_a_file_or_standard_input(
    real_run_logs: RealRunLogs, tmp_path: Path
) -> None:
    query_file = tmp_path / "failures.sql"
    query_file.write_text("-- which requests failed?\nSELECT count(*) AS failed\nFROM outbound_log\n"
                          "WHERE status_code >= 500;\n")  # fmt: skip
    assert ok(sql(real_run_logs, "--file", str(query_file))).splitlines()[2] == "     1"
    piped = sql(real_run_logs, "--format", "csv", stdin="SELECT count(*) AS n FROM inbound_log")
    assert ok(piped) == "n\n3\n"


def test_a_query_and_a_file_together_or_no_sql_are_usage_errors(
    real_run_logs: RealRunLogs, tmp_path: Path
) -> None:
    query_file = tmp_path / "q.sql"
    query_file.write_text("SELECT 1")
    both = sql(real_run_logs, "SELECT 1", "--file", str(query_file))
    empty = sql(real_run_logs, stdin="  \n")
    assert both.exit_code == 2 and "not both" in both.output
    assert empty.exit_code == 2 and "no SQL given" in empty.output


def test_a_sql_error_is_one_line_with_duckdbs_message(real_run_logs: RealRunLogs) -> None:
    result = sql(real_run_logs, "SELECT nope FROM outbound_log")
    syntax = sql(real_run_logs, "SELEC * FROM outbound_log")
    assert result.exit_code == 1 and syntax.exit_code == 1
    assert result.output.startswith('Error: Binder Error: Referenced column "nope" not found')
    assert syntax.output == 'Error: Parser Error: syntax error at or near "SELEC"\n'
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_write_is_refused_and_the_logs_are_unchanged(real_run_logs: RealRunLogs) -> None:
    partition = next((real_run_logs.logs_dir / "outbound_log").glob("date=2*"))
    injected = partition / "injected.parquet"
    copy = sql(real_run_logs, f"COPY (SELECT * FROM outbound_log) TO '{injected}'")
    create = sql(real_run_logs, "CREATE TABLE scratch AS SELECT * FROM outbound_log")
    drop = sql(real_run_logs, "DROP VIEW outbound_log")

    assert copy.exit_code == create.exit_code == drop.exit_code == 1
    assert copy.output.startswith("Error: refused: the logs are read-only and COPY writes a file")
    assert "read-only mode" in create.output and "read-only mode" in drop.output
    assert not injected.exists()
    assert ok(sql(real_run_logs, "--format", "csv", "SELECT count(*) AS n FROM outbound_log")) == (
        "n\n3\n"
    )


def test_temp_tables_work_for_scratch_results(real_run_logs: RealRunLogs) -> None:
    script = (
        "CREATE TEMP TABLE failed AS SELECT identifier FROM outbound_log WHERE status_code >= 500;"
        "SELECT count(*) AS n FROM failed"
    )
    assert ok(sql(real_run_logs, "--format", "csv", script)) == "n\n1\n"


def test_a_table_shows_1000_rows_and_says_more_follow(real_run_logs: RealRunLogs) -> None:
    query = "SELECT range AS n FROM range(1005)"
    table = sql(real_run_logs, query)
    everything = sql(real_run_logs, "--limit", "0", query)
    as_csv = sql(real_run_logs, "--format", "csv", query)

    assert len(ok(table).splitlines()) == 2 + 1000
    assert "showing the first 1000 rows; more follow" in table.stderr
    assert len(ok(everything).splitlines()) == 2 + 1005 and not everything.stderr
    assert len(ok(as_csv).splitlines()) == 1 + 1005


def test_missing_logs_are_reported_and_not_created(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"logs:\n  dir: {tmp_path / 'absent'}\n")
    result = CliRunner().invoke(main, ["logs", "sql", "--settings", str(settings), "SELECT 1"])
    assert result.exit_code == 1 and "no logs yet" in result.output
    assert not (tmp_path / "absent").exists()


def test_help_names_every_view() -> None:
    result = CliRunner().invoke(main, ["logs", "sql", "--help"])
    assert result.exit_code == 0
    assert f"Views: {', '.join(VIEWS)}." in " ".join(result.output.split())


# ---------------------------------------------------------------------------------------------
# Beside a writer
# ---------------------------------------------------------------------------------------------


def write_until_stopped(logs_dir: str, wrote: Any, stop: Any, results: Any) -> None:
    """Publish batches of 25 message rows until told to stop; report how many were written."""
    try:
        writer, written = LogWriter(logs_dir), 0
        while not stop.is_set():
            now = datetime.now(UTC)
            writer.write(
                "outbound_messages",
                [
                    {"timestamp": now, "message_id": f"w-{written + n}", "outcome": "delivered"}
                    for n in range(25)
                ],
            )
            written += 25
            wrote.set()
        results.put(("ok", written))
    except Exception:
        results.put(("error", traceback.format_exc()))


def test_it_runs_while_a_writer_writes(real_run_logs: RealRunLogs) -> None:
    wrote, stop, results = CTX.Event(), CTX.Event(), CTX.Queue()
    writer = CTX.Process(
        target=write_until_stopped, args=(str(real_run_logs.logs_dir), wrote, stop, results)
    )
    count = "SELECT count(*) AS n FROM outbound_messages WHERE message_id LIKE 'w-%'"
    writer.start()
    try:
        assert wrote.wait(DEADLINE_S), "the writer never wrote"
        seen = [int(ok(sql(real_run_logs, "--format", "csv", count)).split()[1]) for _ in range(3)]
        still_writing = writer.is_alive() and not stop.is_set()
        stop.set()
        status, written = results.get(timeout=DEADLINE_S)
    finally:
        stop.set()
        writer.join(timeout=DEADLINE_S)
        if writer.is_alive():
            writer.terminate()

    assert status == "ok", written
    assert still_writing and writer.exitcode == 0
    assert seen == sorted(seen) and seen[0] >= 25  # every query answered, rows arriving
    final = ok(sql(real_run_logs, "--format", "csv", count))
    assert final == f"n\n{written}\n"
