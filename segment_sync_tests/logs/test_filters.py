"""Log filters: the manual's wording, compiled to SQL, returns exactly the matching log rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from segment_sync.logs.filters import FilterError, compile_filter
from segment_sync.logs.store import LogWriter
from segment_sync.logs.time_window import time_range
from segment_sync.logs.views import connect

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def outbound_row(
    identifier: str,
    customers: list[str],
    event_type: str,
    status_code: int | None,
    error: str | None,
    minutes: int = 0,
) -> dict[str, Any]:
    """An outbound_log row; a one-customer request also fills customer_id."""
    return {
        "timestamp": T0 + timedelta(minutes=minutes),
        "customer_id": customers[0] if len(customers) == 1 else None,
        "customer_ids": customers,
        "event_type": event_type,
        "status_code": status_code,
        "response_time_s": 0.1,
        "error": error,
        "identifier": identifier,
        "run_id": "run-1",
        "request_body": "{}",
        "response_body": "{}",
    }


def inbound_row(
    identifier: str,
    customer_id: str,
    action: str,
    status: str,
    status_code: int | None,
    error: str | None,
) -> dict[str, Any]:
    """An inbound_log row."""
    return {
        "timestamp": T0,
        "customer_id": customer_id,
        "action": action,
        "status": status,
        "event_id": f"ev-{identifier}" if status == "success" else None,
        "error": error,
        "identifier": identifier,
        "status_code": status_code,
    }


def inbound_item(identifier: str, event_type: str) -> dict[str, Any]:
    """An inbound_items row: one Segment event handled by the request `identifier`."""
    return {"timestamp": T0, "event_type": event_type, "outcome": "done", "identifier": identifier}


OUTBOUND_ROWS = [
    outbound_row("req-001", ["c-42"], "track", 200, None),
    outbound_row("req-002", ["c-1", "c-42", "c-7"], "track", 500, "Internal Server Error"),
    outbound_row("req-003", ["c-7"], "identify", 400, "Bad request: invalid userId"),
    outbound_row("req-004", ["c-1"], "identify", None, "timeout after 10s"),
    outbound_row("retry-005", ["c-100", "c-2"], "track", 503, "Service Unavailable: timeout"),
    outbound_row("retry-006", ["c-2"], "track", 429, "it's busy and retrying, slow down"),
]
ALL_OUTBOUND = {row["identifier"] for row in OUTBOUND_ROWS}

INBOUND_ROWS = [
    inbound_row("in-001", "c-42", "point_add", "success", 200, None),
    inbound_row("in-002", "c-7", "profile", "success", 200, None),
    inbound_row("in-003", "c-1", "checkout", "error", 500, "Antavo 500: internal error"),
    inbound_row("in-004", "c-42", "point_add", "error", None, "timeout"),
    inbound_row("in-005", "c-9", "profile", "error", 404, "customer not found"),
]
INBOUND_ITEMS = [
    inbound_item("in-001", "track"),
    inbound_item("in-002", "identify"),
    inbound_item("in-003", "track"),
    inbound_item("in-003", "identify"),
    inbound_item("in-004", "track"),
    inbound_item("in-005", "page"),
]
ALL_INBOUND = {row["identifier"] for row in INBOUND_ROWS}


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logs directory holding the outbound and inbound rows above."""
    directory = tmp_path_factory.mktemp("logs")
    writer = LogWriter(directory)
    writer.write("outbound_log", OUTBOUND_ROWS)
    writer.write("inbound_log", INBOUND_ROWS)
    writer.write("inbound_items", INBOUND_ITEMS)
    return directory


@pytest.fixture(scope="module")
def con(logs_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the log views."""
    connection = connect(logs_dir)
    yield connection
    connection.close()


def matching(con: duckdb.DuckDBPyConnection, log: str, text: str) -> set[str]:
    """Identifiers of the `log` rows the filter `text` selects."""
    where, params = compile_filter(text, log)  # type: ignore[arg-type]
    rows = con.execute(f"SELECT identifier FROM {log}_log WHERE {where}", params).fetchall()
    return {identifier for (identifier,) in rows}


def without(everything: set[str], *excluded: str) -> set[str]:
    """`everything` minus `excluded`."""
    return everything - set(excluded)


OUTBOUND_CASES = [
    # Identifier
    ("Identifier is req-003", {"req-003"}),
    ("Identifier is not req-003", without(ALL_OUTBOUND, "req-003")),
    ("Identifier is in req-001, req-002", {"req-001", "req-002"}),
    ("Identifier is not in req-001, req-002", without(ALL_OUTBOUND, "req-001", "req-002")),
    ("Identifier contains retry", {"retry-005", "retry-006"}),
    ("Identifier does not contain retry", {"req-001", "req-002", "req-003", "req-004"}),
    # Customer ID: a batch request matches every customer it carried
    ("Customer ID is c-42", {"req-001", "req-002"}),
    ("Customer ID is not c-42", without(ALL_OUTBOUND, "req-001", "req-002")),
    ("Customer ID is in c-7, c-100", {"req-002", "req-003", "retry-005"}),
    ("Customer ID is not in c-7, c-100", {"req-001", "req-004", "retry-006"}),
    ("Customer ID contains 10", {"retry-005"}),
    ("Customer ID does not contain 10", without(ALL_OUTBOUND, "retry-005")),
    # Event type
    ("Event type is in track", {"req-001", "req-002", "retry-005", "retry-006"}),
    ("Event type is in track, identify", ALL_OUTBOUND),
    ("Event type is identify", {"req-003", "req-004"}),
    ("Event type is not track", {"req-003", "req-004"}),
    ("Event type is not in identify", {"req-001", "req-002", "retry-005", "retry-006"}),
    ("Event type contains ident", {"req-003", "req-004"}),
    ("Event type does not contain ident", {"req-001", "req-002", "retry-005", "retry-006"}),
    # Error
    ("Error is timeout after 10s", {"req-004"}),
    ('Error is not "timeout after 10s"', without(ALL_OUTBOUND, "req-004")),
    ('Error is in "Internal Server Error", Bad request: invalid userId', {"req-002", "req-003"}),
    ("Error is not in Internal Server Error", without(ALL_OUTBOUND, "req-002")),
    ("Error contains timeout", {"req-004", "retry-005"}),
    ("Error does not contain timeout", {"req-001", "req-002", "req-003", "retry-006"}),
    # Status code
    ("Status code is 500", {"req-002"}),
    ("Status code is not 200", without(ALL_OUTBOUND, "req-001")),
    ("Status code is in 500, 503", {"req-002", "retry-005"}),
    ("Status code is not in 200, 429", {"req-002", "req-003", "req-004", "retry-005"}),
    ("Status code > 429", {"req-002", "retry-005"}),
    ("Status code < 400", {"req-001"}),
    ("Status code >= 429", {"req-002", "retry-005", "retry-006"}),
    ("Status code <= 400", {"req-001", "req-003"}),
    ("Status code is 5xx", {"req-002", "retry-005"}),
    ("Status code is not 5xx", {"req-001", "req-003", "req-004", "retry-006"}),
    ("Status code is in 4xx, 200", {"req-001", "req-003", "retry-006"}),
]

INBOUND_CASES = [
    # Action
    ("Action is point_add", {"in-001", "in-004"}),
    ("Action is not point_add", {"in-002", "in-003", "in-005"}),
    ("Action is in profile, checkout", {"in-002", "in-003", "in-005"}),
    ("Action is not in profile", {"in-001", "in-003", "in-004"}),
    ("Action contains point", {"in-001", "in-004"}),
    ("Action does not contain point", {"in-002", "in-003", "in-005"}),
    # Identifier
    ("Identifier is in-002", {"in-002"}),
    ("Identifier is not in-002", without(ALL_INBOUND, "in-002")),
    ("Identifier is in in-001, in-005", {"in-001", "in-005"}),
    ("Identifier is not in in-001, in-005", {"in-002", "in-003", "in-004"}),
    ("Identifier contains 00", ALL_INBOUND),
    ("Identifier does not contain 3", without(ALL_INBOUND, "in-003")),
    # Customer ID
    ("Customer ID is c-42", {"in-001", "in-004"}),
    ("Customer ID is not c-42", {"in-002", "in-003", "in-005"}),
    ("Customer ID is in c-7, c-9", {"in-002", "in-005"}),
    ("Customer ID is not in c-7, c-9", {"in-001", "in-003", "in-004"}),
    ("Customer ID contains 4", {"in-001", "in-004"}),
    ("Customer ID does not contain 4", {"in-002", "in-003", "in-005"}),
    # Event type: the Segment type of the request's items
    ("Event type is in track", {"in-001", "in-003", "in-004"}),
    ("Event type is in track, identify", {"in-001", "in-002", "in-003", "in-004"}),
    ("Event type is identify", {"in-002", "in-003"}),
    ("Event type is not track", {"in-002", "in-005"}),
    ("Event type is not in track, identify", {"in-005"}),
    ("Event type contains ide", {"in-002", "in-003"}),
    ("Event type does not contain ide", {"in-001", "in-004", "in-005"}),
    # Error
    ("Error is timeout", {"in-004"}),
    ("Error is not timeout", without(ALL_INBOUND, "in-004")),
    ("Error is in timeout, customer not found", {"in-004", "in-005"}),
    ("Error is not in timeout, customer not found", {"in-001", "in-002", "in-003"}),
    ("Error contains internal", {"in-003"}),
    ("Error does not contain timeout", without(ALL_INBOUND, "in-004")),
    # Status code (HTTP)
    ("Status code is 500", {"in-003"}),
    ("Status code is not 200", {"in-003", "in-004", "in-005"}),
    ("Status code is in 404, 500", {"in-003", "in-005"}),
    ("Status code is not in 200, 404", {"in-003", "in-004"}),
    ("Status code > 200", {"in-003", "in-005"}),
    ("Status code < 404", {"in-001", "in-002"}),
    ("Status code >= 404", {"in-003", "in-005"}),
    ("Status code <= 404", {"in-001", "in-002", "in-005"}),
    ("Status code is 4xx", {"in-005"}),
    # Status (the sync outcome)
    ("Status is success", {"in-001", "in-002"}),
    ("Status is error", {"in-003", "in-004", "in-005"}),
    ("Status is not success", {"in-003", "in-004", "in-005"}),
    ("Status is in success, error", ALL_INBOUND),
]


@pytest.mark.parametrize(("text", "expected"), OUTBOUND_CASES, ids=[c[0] for c in OUTBOUND_CASES])
def test_each_outbound_field_and_operator_selects_exactly_the_matching_requests(
    con: duckdb.DuckDBPyConnection, text: str, expected: set[str]
) -> None:
    """Every outbound field with every operator returns exactly the expected requests."""
    assert matching(con, "outbound", text) == expected


@pytest.mark.parametrize(("text", "expected"), INBOUND_CASES, ids=[c[0] for c in INBOUND_CASES])
def test_each_inbound_field_and_operator_selects_exactly_the_matching_requests(
    con: duckdb.DuckDBPyConnection, text: str, expected: set[str]
) -> None:
    """Every inbound field with every operator returns exactly the expected requests."""
    assert matching(con, "inbound", text) == expected


def test_conditions_joined_with_and_must_all_hold(con: duckdb.DuckDBPyConnection) -> None:
    """`and` intersects the conditions."""
    text = "Event type is in track and Status code is not 200 and Error contains timeout"
    assert matching(con, "outbound", text) == {"retry-005"}
    assert matching(con, "inbound", "Action is point_add and Status is error") == {"in-004"}


def test_keywords_and_field_names_are_case_insensitive(con: duckdb.DuckDBPyConnection) -> None:
    """`EVENT TYPE IS IN Track AND status CODE IS NOT 200` reads like the manual's wording."""
    text = "EVENT TYPE IS IN Track AND status CODE IS NOT 200"
    assert matching(con, "outbound", text) == {"req-002", "retry-005", "retry-006"}


def test_field_names_accept_the_column_spelling(con: duckdb.DuckDBPyConnection) -> None:
    """`customer_id` means Customer ID."""
    assert matching(con, "outbound", "customer_id is c-42") == {"req-001", "req-002"}


def test_contains_ignores_case(con: duckdb.DuckDBPyConnection) -> None:
    """`Error contains TIMEOUT` finds `timeout`."""
    assert matching(con, "outbound", "Error contains TIMEOUT") == {"req-004", "retry-005"}


def test_quoted_value_may_contain_and(con: duckdb.DuckDBPyConnection) -> None:
    """A double-quoted value keeps ` and ` as text instead of starting a new condition."""
    assert matching(con, "outbound", 'Error contains "busy and retrying"') == {"retry-006"}


def test_quoted_list_item_may_contain_a_comma(con: duckdb.DuckDBPyConnection) -> None:
    """Inside `is in`, a quoted item keeps its comma."""
    text = 'Error is in "it\'s busy and retrying, slow down", timeout after 10s'
    assert matching(con, "outbound", text) == {"req-004", "retry-006"}


def test_single_quote_is_an_ordinary_character(con: duckdb.DuckDBPyConnection) -> None:
    """`it's` needs no quoting."""
    assert matching(con, "outbound", "Error contains it's") == {"retry-006"}


def test_escaped_double_quote_inside_quoted_value() -> None:
    """`\\"` inside a quoted value is a literal double quote."""
    _, params = compile_filter(r'Error is "say \"hi\""', "outbound")
    assert params == ['say "hi"']


def test_blank_filter_matches_everything(con: duckdb.DuckDBPyConnection) -> None:
    """Empty or blank text compiles to TRUE with no parameters."""
    assert compile_filter("", "outbound") == ("TRUE", [])
    assert compile_filter("   ", "inbound") == ("TRUE", [])
    assert matching(con, "inbound", " ") == ALL_INBOUND


def test_injection_attempt_is_a_literal_value(tmp_path: Path) -> None:
    """SQL in a value is bound as a parameter: it matches literally and executes nothing."""
    attack = "'); DROP TABLE x; --"
    LogWriter(tmp_path).write(
        "outbound_log",
        [
            outbound_row("evil", ["c-1"], "track", 400, f"bad value {attack}"),
            outbound_row("plain", ["c-2"], "track", 400, "bad value"),
        ],
    )
    where, params = compile_filter(f"Error contains {attack}", "outbound")
    assert attack not in where
    assert params == [attack]
    con = connect(tmp_path)
    con.execute("CREATE TABLE x (a INTEGER)")
    rows = con.execute(f"SELECT identifier FROM outbound_log WHERE {where}", params).fetchall()
    assert rows == [("evil",)]
    assert con.execute("SELECT count(*) FROM x").fetchone() == (0,)


def test_values_are_never_spliced_into_the_sql() -> None:
    """Every value of every condition appears only in the parameter list."""
    where, params = compile_filter(
        "Customer ID is in c-x1, c-y2 and Error does not contain zzz-marker", "outbound"
    )
    assert "c-x1" not in where and "c-y2" not in where and "zzz-marker" not in where
    assert where.count("?") == len(params)


@pytest.mark.parametrize(
    ("log", "fields"),
    [
        (
            "outbound",
            "outbound log fields: Identifier, Customer ID, Event type, Error, Status code, Destination",
        ),
        (
            "inbound",
            "inbound log fields: Action, Identifier, Customer ID, Event type, Error, "
            "Status code, Status",
        ),
    ],
)
def test_unknown_field_error_lists_the_logs_fields(log: str, fields: str) -> None:
    """`Colour is red` names the field and lists the valid ones for that log."""
    with pytest.raises(FilterError) as caught:
        compile_filter("Colour is red", log)  # type: ignore[arg-type]
    assert str(caught.value) == f"unknown field 'Colour'; {fields}"


def test_inbound_only_field_is_unknown_on_the_outbound_log() -> None:
    """`Action` is an inbound field; on the outbound log it is unknown."""
    with pytest.raises(FilterError, match=r"unknown field 'Action'; outbound log fields"):
        compile_filter("Action is point_add", "outbound")


def test_unknown_operator_error_lists_the_fields_operators() -> None:
    """`Status code equals 500` names the operator and lists Status code's operators."""
    with pytest.raises(FilterError) as caught:
        compile_filter("Status code equals 500", "outbound")
    assert str(caught.value) == (
        "unknown operator 'equals' after Status code; "
        "Status code operators: is, is not, is in, is not in, >, <, >=, <="
    )


def test_operator_that_does_not_apply_to_the_field_lists_its_operators() -> None:
    """Comparisons are for Status code only."""
    with pytest.raises(FilterError) as caught:
        compile_filter("Error > 5", "inbound")
    assert str(caught.value) == (
        "operator '>' does not apply to Error; "
        "Error operators: is, is not, is in, is not in, contains, does not contain"
    )


def test_non_numeric_status_code_is_a_clear_error() -> None:
    """`Status code is abc` says a number (or class) is needed."""
    with pytest.raises(FilterError) as caught:
        compile_filter("Status code is abc", "outbound")
    assert str(caught.value) == (
        "Status code must be a number like 500 or a class like 5xx, got 'abc'"
    )


def test_event_type_outside_its_vocabulary_is_an_error() -> None:
    """A typo like `trak` is reported instead of silently matching nothing."""
    with pytest.raises(FilterError, match=r"Event type 'trak' is not one of: track, identify"):
        compile_filter("Event type is in trak", "outbound")


def test_unquoted_and_inside_a_value_suggests_quoting() -> None:
    """`Error contains rock and roll` points at the double-quote fix."""
    with pytest.raises(FilterError, match=r"put it in double quotes"):
        compile_filter("Error contains rock and roll", "outbound")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Error is", r"missing value after 'Error is'"),
        ("Error is x and", r"ends with 'and'"),
        ('Error is "x', r"unterminated quoted value"),
        ("Event type", r"missing operator and value after Event type"),
        ("hello", r"expected '<field> <operator> <value>'"),
    ],
)
def test_incomplete_filter_is_a_readable_error(text: str, message: str) -> None:
    """Half-typed filters say what is missing."""
    with pytest.raises(FilterError, match=message):
        compile_filter(text, "outbound")


# ---------------------------------------------------------------------------------------------
# Time ranges
# ---------------------------------------------------------------------------------------------

NOW = T0 + timedelta(hours=2)


@pytest.fixture(scope="module")
def timed_con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """Outbound requests 0, 30, 90 minutes and one day after T0."""
    directory = tmp_path_factory.mktemp("timed")
    LogWriter(directory).write(
        "outbound_log",
        [
            outbound_row("t+0m", ["c"], "track", 200, None, minutes=0),
            outbound_row("t+30m", ["c"], "track", 200, None, minutes=30),
            outbound_row("t+90m", ["c"], "track", 200, None, minutes=90),
            outbound_row("t+1d", ["c"], "track", 200, None, minutes=24 * 60),
        ],
    )
    connection = connect(directory)
    yield connection
    connection.close()


def in_range(con: duckdb.DuckDBPyConnection, since: str | None, until: str | None) -> set[str]:
    """Identifiers inside the time range, with `now` fixed at T0 + 2h."""
    where, params = time_range(since, until, now=NOW)
    rows = con.execute(f"SELECT identifier FROM outbound_log WHERE {where}", params).fetchall()
    return {identifier for (identifier,) in rows}


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, {"t+0m", "t+30m", "t+90m", "t+1d"}),
        ("2024-03-01T12:30:00Z", None, {"t+30m", "t+90m", "t+1d"}),
        ("2024-03-01T12:30:00", None, {"t+30m", "t+90m", "t+1d"}),
        ("2024-03-01T13:30:00+01:00", None, {"t+30m", "t+90m", "t+1d"}),
        (None, "2024-03-01T12:30:00Z", {"t+0m"}),
        ("2024-03-01", "2024-03-01", {"t+0m", "t+30m", "t+90m"}),
        ("2024-03-02", None, {"t+1d"}),
        ("1h", None, {"t+90m", "t+1d"}),
        ("100m", "1h", {"t+30m"}),
        ("2h", "now", {"t+0m", "t+30m", "t+90m"}),
        ("1d", None, {"t+0m", "t+30m", "t+90m", "t+1d"}),
        ("7200s", "30 m ago", {"t+0m", "t+30m"}),
    ],
)
def test_time_range_keeps_rows_from_since_until_before_until(
    timed_con: duckdb.DuckDBPyConnection, since: str | None, until: str | None, expected: set[str]
) -> None:
    """ISO instants, dates (a bare `until` date includes that day) and `1h`-style durations ago."""
    assert in_range(timed_con, since, until) == expected


def test_time_range_without_bounds_is_true() -> None:
    """No --since and no --until: every row."""
    assert time_range(None, None) == ("TRUE", [])


def test_unreadable_time_is_a_clear_error() -> None:
    """`yesterday` is not understood; the message shows the accepted forms."""
    with pytest.raises(FilterError, match=r"cannot read time 'yesterday'; use an ISO date"):
        time_range("yesterday", None)


def test_since_after_until_is_an_error() -> None:
    """An empty range is almost certainly a mistake."""
    with pytest.raises(FilterError, match=r"--since .* must be earlier than --until"):
        time_range("2024-03-02", "2024-03-01T00:00:00Z")


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("99999999999d", None, {"t+0m", "t+30m", "t+90m", "t+1d"}),
        ("9" * 5000 + "d", None, {"t+0m", "t+30m", "t+90m", "t+1d"}),
        ("9999999999w", "2024-03-01T12:30:00Z", {"t+0m"}),
        ("0001-01-01T00:00:00+14:00", None, {"t+0m", "t+30m", "t+90m", "t+1d"}),
        ("2024-03-02", "9999-12-31", {"t+1d"}),
        ("2024-03-02", "9999-12-31T23:59:59-14:00", {"t+1d"}),
    ],
)
def test_a_bound_beyond_the_years_datetimes_hold_means_everything_on_that_side(
    timed_con: duckdb.DuckDBPyConnection, since: str | None, until: str | None, expected: set[str]
) -> None:
    """`--since 99999999999d` or `--until 9999-12-31` cannot be a datetime; they were an
    OverflowError traceback (red-team review) and now reach the earliest or latest instant."""
    assert in_range(timed_con, since, until) == expected
