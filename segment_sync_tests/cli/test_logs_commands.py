"""`segment-sync logs`: the manual's log pages, filters and expanded entries on the command line."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from click.testing import CliRunner, Result

from segment_sync.cli.log_output import BODY_PREVIEW_CHARS
from segment_sync.cli.logs import logs
from segment_sync.logs.store import LogWriter
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.disks import break_disk

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
OUTBOUND_HEADERS = [
    "Timestamp",
    "Customer ID",
    "Event type",
    "Status code",
    "Response time (s)",
    "Error",
    "Identifier",
]
INBOUND_HEADERS = ["Timestamp", "Customer ID", "Action", "Status", "Event", "Error", "Identifier"]
LONG_ERROR = "upstream timeout while waiting for the Segment batch endpoint " * 5


def outbound_row(identifier: str, minutes: int, **overrides: Any) -> dict[str, Any]:
    """An outbound_log row `minutes` after T0."""
    row = {
        "timestamp": T0 + timedelta(minutes=minutes),
        "customer_id": "c-1",
        "customer_ids": ["c-1"],
        "event_type": "track",
        "status_code": 200,
        "response_time_s": 0.25,
        "error": None,
        "identifier": identifier,
        "run_id": "run-1",
        "request_body": json.dumps({"batch": [{"type": "track", "userId": "c-1"}]}),
        "response_body": json.dumps({"success": True}),
    }
    return {**row, **overrides}


def inbound_row(identifier: str, minutes: int, **overrides: Any) -> dict[str, Any]:
    """An inbound_log row `minutes` after T0."""
    row = {
        "timestamp": T0 + timedelta(minutes=minutes),
        "customer_id": "c-9",
        "action": "point_add",
        "status": "success",
        "event_id": "ev-77",
        "error": None,
        "identifier": identifier,
        "status_code": 200,
        "response_time_s": 0.1,
        "event_count": 1,
        "request_body": json.dumps({"customer": "c-9", "action": "point_add"}),
        "response_body": "accepted",
    }
    return {**row, **overrides}


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """A settings file whose logs directory holds three outbound and two inbound requests."""
    logs_dir = tmp_path / "logs"
    writer = LogWriter(logs_dir)
    writer.write(
        "outbound_log",
        [
            outbound_row("req-old", 0),
            outbound_row(
                "req-batch",
                10,
                customer_id=None,
                customer_ids=[f"c-{n}" for n in range(25)],
                status_code=500,
                error=LONG_ERROR,
            ),
            outbound_row(
                "req-new", 20, event_type="identify", customer_id="c-2", customer_ids=["c-2"]
            ),
        ],
    )
    writer.write(
        "inbound_log",
        [
            inbound_row("in-1", 5),
            inbound_row(
                "in-2",
                15,
                status="error",
                event_id=None,
                error="customer not found",
                status_code=404,
            ),
        ],
    )
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"logs": {"dir": str(logs_dir)}}))
    return path


def run(*args: str) -> Result:
    """Invoke the `logs` group."""
    return CliRunner().invoke(logs, list(args))


def table_lines(result: Result) -> list[str]:
    """The stdout lines of a table."""
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_outbound_table_shows_the_manuals_column_headers(settings_file: Path) -> None:
    """The header row has the manual's Outbound logs columns, in order."""
    header = table_lines(run("outbound", "--settings", str(settings_file)))[0]
    assert header.split("  ")[0] == "Timestamp"
    positions = [header.index(title) for title in OUTBOUND_HEADERS]
    assert positions == sorted(positions)


def test_inbound_table_shows_the_manuals_column_headers(settings_file: Path) -> None:
    """The header row has the manual's Inbound logs columns, in order."""
    header = table_lines(run("inbound", "--settings", str(settings_file)))[0]
    positions = [header.index(title) for title in INBOUND_HEADERS]
    assert positions == sorted(positions)


def test_table_lists_newest_first(settings_file: Path) -> None:
    """Rows are ordered by timestamp, newest at the top."""
    lines = table_lines(run("outbound", "--settings", str(settings_file)))[2:]
    assert [line.split()[-1] for line in lines] == ["req-new", "req-batch", "req-old"]


def test_table_columns_are_aligned(settings_file: Path) -> None:
    """Every column starts at the same offset on every line."""
    lines = table_lines(run("outbound", "--settings", str(settings_file)))
    for title in ("Event type", "Identifier"):
        offset = lines[0].index(title)
        assert all(line[offset - 2 : offset] == "  " and line[offset] != " " for line in lines)


def test_table_truncates_long_errors(settings_file: Path) -> None:
    """A long error is cut with `...` instead of stretching the table."""
    lines = table_lines(run("outbound", "--settings", str(settings_file)))
    batch = next(line for line in lines if "req-batch" in line)
    assert "..." in batch
    assert LONG_ERROR.strip() not in batch
    assert len(batch) < 200


def test_table_shows_a_batch_requests_first_customer_and_count(settings_file: Path) -> None:
    """A request for 25 customers shows `c-0 (+24 more)` under Customer ID."""
    lines = table_lines(run("outbound", "--settings", str(settings_file)))
    assert "c-0 (+24 more)" in next(line for line in lines if "req-batch" in line)


def test_filter_option_uses_the_manuals_wording(settings_file: Path) -> None:
    """`--filter 'Status code is not 200'` keeps only the failed request."""
    result = run("outbound", "--settings", str(settings_file), "--filter", "Status code is not 200")
    assert [line.split()[-1] for line in table_lines(result)[2:]] == ["req-batch"]


def test_outbound_customer_filter_matches_batch_members(settings_file: Path) -> None:
    """`Customer ID is c-7` finds the batch request that carried c-7."""
    result = run(
        "outbound",
        "--settings",
        str(settings_file),
        "--filter",
        "Customer ID is c-7",
        "--format",
        "json",
    )
    assert [row["identifier"] for row in json.loads(result.stdout)] == ["req-batch"]


def test_since_and_until_bound_the_rows(settings_file: Path) -> None:
    """--since/--until keep requests inside the half-open range."""
    result = run(
        "outbound",
        "--settings",
        str(settings_file),
        "--since",
        "2024-03-01T12:05:00Z",
        "--until",
        "2024-03-01T12:15:00Z",
        "--format",
        "json",
    )
    assert [row["identifier"] for row in json.loads(result.stdout)] == ["req-batch"]


def test_limit_keeps_the_newest_and_says_more_match(settings_file: Path) -> None:
    """--limit 1 prints the newest request and a note on stderr that more match."""
    result = run("outbound", "--settings", str(settings_file), "--limit", "1", "--format", "json")
    assert [row["identifier"] for row in json.loads(result.stdout)] == ["req-new"]
    assert "showing the newest 1" in result.stderr


def test_outbound_json_keys_are_exactly_the_contract(settings_file: Path) -> None:
    """Each object has exactly the outbound keys; timestamps are ISO-8601 UTC."""
    result = run("outbound", "--settings", str(settings_file), "--format", "json")
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [
        [
            "timestamp",
            "customer_id",
            "customer_ids",
            "event_type",
            "status_code",
            "response_time_s",
            "error",
            "identifier",
            "destination",
        ]
    ] * 3
    assert rows[0] == {
        "timestamp": "2024-03-01T12:20:00.000000Z",
        "customer_id": "c-2",
        "customer_ids": ["c-2"],
        "event_type": "identify",
        "status_code": 200,
        "response_time_s": 0.25,
        "error": None,
        "identifier": "req-new",
        "destination": None,  # one destination: none named
    }
    assert rows[1]["customer_id"] is None
    assert rows[1]["customer_ids"] == [f"c-{n}" for n in range(25)]


def test_inbound_json_keys_are_exactly_the_contract(settings_file: Path) -> None:
    """Each object has the manual's inbound columns, then which event and mapping it is about."""
    result = run("inbound", "--settings", str(settings_file), "--format", "json")
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [
        ["timestamp", "customer_id", "action", "status", "event_id", "error", "identifier",
         "event_type", "message_id", "mapping_name", "status_code"]
    ] * 2  # fmt: skip
    assert rows[0]["identifier"] == "in-2" and rows[0]["status"] == "error"


def test_csv_has_a_header_row(settings_file: Path) -> None:
    """CSV output starts with the column names and has one line per request."""
    result = run("inbound", "--settings", str(settings_file), "--format", "csv")
    records = list(csv.reader(io.StringIO(result.stdout)))
    assert records[0] == [
        "timestamp",
        "customer_id",
        "action",
        "status",
        "event_id",
        "error",
        "identifier",
        "event_type",
        "message_id",
        "mapping_name",
        "status_code",
    ]
    assert [record[6] for record in records[1:]] == ["in-2", "in-1"]


def test_no_match_says_so(settings_file: Path) -> None:
    """A filter matching nothing prints a sentence rather than an empty table."""
    result = run("inbound", "--settings", str(settings_file), "--filter", "Action is nothing")
    assert table_lines(result) == ["No matching inbound requests."]


def test_show_prints_every_column_and_both_bodies(settings_file: Path) -> None:
    """`show` expands an outbound request: columns, then pretty-printed request and response."""
    result = run("show", "req-old", "--settings", str(settings_file))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("outbound request req-old")
    for column in ("timestamp", "customer_ids", "status_code", "run_id", "endpoint"):
        assert f"  {column} " in out
    assert out.index("Request body:") < out.index("Response body:")
    assert '"batch": [\n' in out  # pretty-printed JSON
    assert '"success": true' in out


def test_show_finds_inbound_requests_and_prints_plain_text_bodies(settings_file: Path) -> None:
    """An inbound identifier is found too; a non-JSON body is printed as is."""
    result = run("show", "in-1", "--settings", str(settings_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("inbound request in-1")
    assert '"action": "point_add"' in result.stdout
    assert result.stdout.rstrip().endswith("Response body:\naccepted")


def test_show_truncates_huge_bodies_unless_full(tmp_path: Path) -> None:
    """A huge body is cut with a note naming the hidden size and --full; --full prints it all."""
    body = json.dumps({"batch": [{"userId": f"c-{n}", "type": "track"} for n in range(2000)]})
    LogWriter(tmp_path / "logs").write("outbound_log", [outbound_row("big", 0, request_body=body)])
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"logs": {"dir": str(tmp_path / "logs")}}))
    short = run("show", "big", "--settings", str(settings))
    pretty = json.dumps(json.loads(body), indent=2)
    hidden = len(pretty) - BODY_PREVIEW_CHARS
    assert f"... ({hidden:,} more bytes; use --full)" in short.stdout
    full = run("show", "big", "--settings", str(settings), "--full")
    assert pretty in full.stdout and "use --full" not in full.stdout


def test_show_unknown_identifier_fails_with_a_clear_message(settings_file: Path) -> None:
    """An identifier in neither log exits non-zero and says so."""
    result = run("show", "nope", "--settings", str(settings_file))
    assert result.exit_code != 0
    assert "no outbound or inbound log entry has identifier 'nope'" in result.output
    assert "Traceback" not in result.output


def test_bad_filter_is_a_readable_error_without_traceback(settings_file: Path) -> None:
    """A FilterError becomes a one-line error and a non-zero exit, not a crash."""
    result = run("outbound", "--settings", str(settings_file), "--filter", "Colour is red")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Error: unknown field 'Colour'; outbound log fields: Identifier" in result.output
    assert "Traceback" not in result.output


def test_bad_time_is_a_readable_error(settings_file: Path) -> None:
    """An unreadable --since is reported like a bad filter."""
    result = run("inbound", "--settings", str(settings_file), "--since", "yesterday")
    assert result.exit_code == 1
    assert "cannot read time 'yesterday'" in result.output


def test_bad_settings_file_is_a_readable_error(tmp_path: Path) -> None:
    """A missing settings file is reported with its path."""
    result = run("outbound", "--settings", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 1
    assert "missing.yaml: no such file" in result.output


def test_missing_logs_directory_is_reported_not_created(tmp_path: Path) -> None:
    """Settings pointing at a logs directory that does not exist: a clear error, nothing created."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"logs": {"dir": str(tmp_path / "absent")}}))
    result = run("outbound", "--settings", str(settings))
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert not (tmp_path / "absent").exists()


def test_logs_outbound_answers_through_the_segment_sync_command(settings_file: Path) -> None:
    """`segment-sync logs outbound` works through the top-level group, as a user types it."""
    from segment_sync.cli import main

    result = CliRunner().invoke(
        main, ["logs", "outbound", "--settings", str(settings_file), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_newest_first_search_spans_recent_and_old_days(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    recent = [outbound_row(f"new-{n}", 0, timestamp=now - timedelta(minutes=n)) for n in range(3)]
    old = [outbound_row(f"old-{n}", 0, timestamp=now - timedelta(days=40 + n)) for n in range(2)]
    LogWriter(tmp_path / "logs").write("outbound_log", recent + old)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"logs": {"dir": str(tmp_path / "logs")}}))

    def identifiers(limit: int) -> list[str]:
        result = run("outbound", "--settings", str(path), "--format", "json", "--limit", str(limit))
        assert result.exit_code == 0, result.output
        return [row["identifier"] for row in json.loads(result.stdout)]

    assert identifiers(2) == ["new-0", "new-1"]
    assert identifiers(10) == ["new-0", "new-1", "new-2", "old-0", "old-1"]
    assert identifiers(0) == ["new-0", "new-1", "new-2", "old-0", "old-1"]


def test_logs_db_creates_the_analysts_file_before_any_run_and_says_how_to_open_it(
    tmp_path: Path,
) -> None:
    logs_dir = tmp_path / "never-written"
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"logs": {"dir": str(logs_dir)}}))
    result = run("db", "--settings", str(settings))
    assert result.exit_code == 0, result.output
    path = logs_dir.resolve() / "segment_sync.duckdb"
    assert str(path) in result.stdout
    assert f'segment-sync logs sql --settings {settings} "SELECT * FROM daily_summary"' in (
        result.stdout
    )
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM outbound_log").fetchone() == (0,)
    LogWriter(str(logs_dir)).write("outbound_log", [outbound_row("out-after", 1)])
    with duckdb.connect(str(path), read_only=True) as con:  # views: no refresh needed
        assert con.execute("SELECT identifier FROM outbound_log").fetchall() == [("out-after",)]


def test_logs_db_on_a_full_disk_names_logs_dir_and_the_fix(small_tmpfs: Path) -> None:
    logs_dir = small_tmpfs / "logs"
    LogWriter(logs_dir).write("outbound_log", [outbound_row("out-1", 1)])
    settings = small_tmpfs.parent / "settings.yaml"
    settings.write_text(yaml.safe_dump({"logs": {"dir": str(logs_dir)}}))
    break_disk(small_tmpfs, "full")

    result = run("db", "--settings", str(settings))

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"logs.dir ({logs_dir})" in result.output and "writable folder" in result.output


def test_logs_db_refreshes_the_file_while_a_reader_has_it_open(settings_file: Path) -> None:
    assert run("db", "--settings", str(settings_file)).exit_code == 0
    logs_dir = Path(yaml.safe_load(settings_file.read_text())["logs"]["dir"])
    with duckdb.connect(str(logs_dir / "segment_sync.duckdb"), read_only=True) as reader:
        again = run("db", "--settings", str(settings_file))
        assert again.exit_code == 0, again.output
        assert reader.execute("SELECT count(*) FROM outbound_log").fetchone()[0] > 0


@pytest.fixture
def real_batch_logs(write_settings, segment_standin) -> Path:
    """Settings whose logs hold one real sync run: 12 events of 12 customers in one request."""
    from segment_sync import factory
    from segment_sync.loyalty.records import NewEvent, Stream
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.settings import load_settings

    path = write_settings(outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    events = [NewEvent(f"c-{n}", "point_add", {"points": n}) for n in range(12)]
    events.append(NewEvent("c-solo", "point_add", {}))
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events(events[:12])
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    sync.run(Stream.EVENTS, "run-batch")
    store.append_events(events[12:])
    sync.run(Stream.EVENTS, "run-solo")
    return path


def test_outbound_json_lists_every_customer_of_a_batch_request(real_batch_logs: Path) -> None:
    result = run("outbound", "--settings", str(real_batch_logs), "--format", "json")
    assert result.exit_code == 0, result.output
    solo, batch = json.loads(result.stdout)
    assert batch["customer_id"] is None
    assert batch["customer_ids"] == [f"c-{n}" for n in range(12)]
    assert (solo["customer_id"], solo["customer_ids"]) == ("c-solo", ["c-solo"])


def test_outbound_csv_joins_a_batch_requests_customers_with_semicolons(
    real_batch_logs: Path,
) -> None:
    result = run("outbound", "--settings", str(real_batch_logs), "--format", "csv")
    assert result.exit_code == 0, result.output
    header, solo, batch = csv.reader(io.StringIO(result.stdout))
    assert header[:3] == ["timestamp", "customer_id", "customer_ids"]
    assert batch[1:3] == ["", ";".join(f"c-{n}" for n in range(12))]
    assert solo[1:3] == ["c-solo", "c-solo"]


def _help(direction: str) -> str:
    result = CliRunner().invoke(logs, [direction, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # click wraps lines: compare the words


def test_logs_inbound_help_describes_the_inbound_log_and_its_own_filter_example() -> None:
    text = _help("inbound")
    assert "Antavo" in text and "Segment event" in text
    assert "'Action is in checkout and Status is not success'" in text
    assert "Event type is in track" not in text  # the outbound example
    for field in ("Action", "Identifier", "Customer ID", "Event type", "Status code", "Status"):
        assert field in text


def test_logs_outbound_help_describes_the_outbound_log() -> None:
    text = _help("outbound")
    assert "request sent to Segment" in text and "Antavo" not in text
    assert "'Event type is in track and Status code is not 200'" in text
    assert "Action" not in text  # an inbound-only field


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
def test_each_help_example_is_a_filter_its_log_accepts(settings_file: Path, direction) -> None:
    from segment_sync.cli.logs import FILTER_EXAMPLES

    result = run(
        direction, "--filter", FILTER_EXAMPLES[direction], "--settings", str(settings_file)
    )
    assert result.exit_code == 0, result.output
