"""A damaged Parquet file in logs.dir: every `logs` command fails with one line naming the file
and the fix, `logs check` finds it, and `--quarantine` moves it aside so the logs work again."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segment_sync.cli import main
from segment_sync.logs.layout import data_files, partition_dir, summary_path, write_parquet
from segment_sync.logs.logbook import Logbook
from segment_sync.logs.maintenance import compact
from segment_sync.logs.read_only import LogsSQLError
from segment_sync.logs.store import LogWriter
from segment_sync_tests.cli.test_logs_commands import inbound_row, outbound_row
from segment_sync_tests.disks import damage_file

COMMANDS = [["outbound"], ["inbound"], ["show", "big-3"], ["db"]]
# `logs sql` reads every column, request bodies too, so page damage fails it (unlike a listing).
DAMAGE_COMMANDS = [*COMMANDS, ["sql", "SELECT * FROM outbound_log"]]


def logs_with_files(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """A settings file, and logs.dir with three outbound files and one inbound file; the
    last outbound file carries big bodies, so most of it is data pages."""
    logs_dir = tmp_path / "logs"
    writer = LogWriter(logs_dir)
    files = [writer.write("outbound_log", [outbound_row(f"out-{n}", n)])[0] for n in range(2)]
    body = "".join(f"{n:08x}" for n in range(20_000))
    files += writer.write(
        "outbound_log", [outbound_row(f"big-{n}", 9, request_body=body + str(n)) for n in range(20)]
    )
    files += writer.write("inbound_log", [inbound_row("in-0", 0)])
    path = tmp_path / "segment_sync.yaml"
    path.write_text(yaml.safe_dump({"logs": {"dir": str(logs_dir)}}))
    return path, logs_dir, files


def run(settings: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["logs", *args, "--settings", str(settings)])


def one_line_naming(result: Result, damaged: Path) -> bool:
    """The command failed with one line naming the file and the fix, no traceback."""
    lines = result.output.strip().splitlines()
    return (
        result.exit_code == 1
        and len(lines) == 1
        and f"log file {damaged} cannot be read" in lines[0]
        and "segment-sync logs check --quarantine" in lines[0]
        and result.exc_info[0] is SystemExit
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("how", ["truncated", "scrambled-pages"])
def test_a_damaged_log_file_is_one_line_naming_it_and_the_fix(tmp_path, command, how):
    settings, _, files = logs_with_files(tmp_path)
    damaged = files[2]  # the big outbound file: "scrambled-pages" leaves its footer readable
    damage_file(damaged, how)

    result = run(settings, *command)

    if how == "scrambled-pages" and command[0] != "show":
        assert result.exit_code == 0, result.output  # they never read its request bodies
    else:
        assert one_line_naming(result, damaged), result.output  # today: a DuckDB traceback


def test_logs_check_lists_a_damaged_file_then_quarantine_moves_it_and_the_logs_work(tmp_path):
    settings, logs_dir, files = logs_with_files(tmp_path)
    damage_file(files[0], "truncated")
    kept = files[0].read_bytes()

    listed = run(settings, "check")
    moved = run(settings, "check", "--quarantine")
    clean = run(settings, "check")
    shown = run(settings, "outbound", "--format", "csv")

    assert listed.exit_code == 1 and f"{files[0]}: Parquet magic bytes" in listed.output
    assert "checked 4 log file(s)" in listed.output and "1 unreadable" in listed.output
    target = logs_dir / "quarantine" / files[0].relative_to(logs_dir)
    assert moved.exit_code == 0 and f"moved {files[0]} to {target}" in moved.output
    assert target.read_bytes() == kept and not files[0].exists()
    assert clean.exit_code == 0 and "0 unreadable" in clean.output
    assert shown.exit_code == 0 and "out-1" in shown.output and "out-0" not in shown.output


@st.composite
def damages(draw) -> tuple[int, str, int, bytes]:
    """Which file, and how: cut at an offset, bytes overwritten at an offset, or replaced."""
    which = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["cut", "overwrite", "replace"]))
    return which, kind, draw(st.integers(0, 10**9)), draw(st.binary(min_size=1, max_size=64))


def apply_damage(path: Path, kind: str, where: int, data: bytes) -> None:
    original = path.read_bytes()
    at = where % len(original)
    if kind == "cut":
        damaged = original[:at]
    elif kind == "overwrite":
        damaged = original[:at] + bytes(b ^ 0xFF for b in data) + original[at + len(data) :]
    else:
        damaged = data
    path.write_bytes(damaged)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damages())
@example(damage=(0, "overwrite", 3254, b"\0\0\0\0\0\0\2"))  # a footer DuckDB refuses, pyarrow reads
@example(damage=(0, "overwrite", 33, b"\0\1"))  # a time before year 1: a traceback in the listing
@example(damage=(0, "overwrite", 0, b"\0" * 5))  # logs sql: Thrift's "don't know what type: "
def test_any_damage_to_a_log_file_is_shown_or_named_and_check_agrees(tmp_path_factory, damage):
    settings_file, logs_dir, files = logs_with_files(tmp_path_factory.mktemp("logs"))
    which, kind, where, data = damage
    apply_damage(files[which], kind, where, data)

    results = [run(settings_file, *command) for command in DAMAGE_COMMANDS]
    check = run(settings_file, "check")

    for result in results:  # each command works, or names the damaged file in one line
        assert result.exit_code == 0 or one_line_naming(result, files[which]), result.output
    if any(r.exit_code for r in results):  # what a command could not read, check finds
        assert check.exit_code == 1 and f"{files[which]}:" in check.output
    run(settings_file, "check", "--quarantine")
    after = run(settings_file, "outbound", "--format", "csv", "--limit", "0")
    assert after.exit_code == 0  # once it is moved aside, the logs work
    good = [f"out-{n}" for n in range(2) if n != which]
    assert all(identifier in after.output for identifier in good)


def sql(settings: Path, query: str) -> Result:
    return CliRunner().invoke(main, ["logs", "sql", query, "--settings", str(settings)])


@pytest.mark.parametrize("how", ["truncated", "scrambled-pages"])
def test_logs_sql_over_a_damaged_log_file_is_one_line_naming_it_and_the_fix(tmp_path, how):
    settings, _, files = logs_with_files(tmp_path)
    damage_file(files[2], how)

    result = sql(settings, "SELECT max(length(request_body)) AS longest FROM outbound_log")

    assert one_line_naming(result, files[2]), result.output  # was DuckDB's words, no file


def test_logs_sql_over_a_damaged_summary_is_one_line_naming_it_and_the_fix(tmp_path):
    settings, logs_dir, _ = logs_with_files(tmp_path)
    compact(logs_dir, "outbound_log")
    (data_file,) = data_files(next((logs_dir / "outbound_log").glob("date=2*")))
    damage_file(summary_path(data_file), "scrambled-pages")

    result = sql(settings, "SELECT sum(requests) AS requests FROM daily_summary")

    # was "Error: TProtocolException: Invalid data"
    assert one_line_naming(result, summary_path(data_file)), result.output


def test_a_mistake_in_the_sql_is_duckdbs_message_even_beside_a_damaged_file(tmp_path):
    settings, _, files = logs_with_files(tmp_path)
    damage_file(files[2], "scrambled-pages")

    result = sql(settings, "SELECT no_such_column FROM outbound_log")

    assert result.exit_code == 1
    assert result.output.startswith("Error: Binder Error: Referenced column"), result.output
    assert "cannot be read" not in result.output


def test_the_analysts_logbook_names_a_damaged_log_file_and_the_fix(tmp_path):
    _, logs_dir, files = logs_with_files(tmp_path)
    damage_file(files[2], "scrambled-pages")
    book = Logbook(logs_dir)

    with pytest.raises(LogsSQLError, match="segment-sync logs check --quarantine") as raised:
        book.sql("SELECT max(length(request_body)) AS longest FROM outbound_log")
    assert f"log file {files[2]} cannot be read" in str(raised.value)
    with pytest.raises(LogsSQLError, match="cannot be read"):
        next(book.sql_chunks("SELECT request_body FROM outbound_log"))


@pytest.mark.parametrize("output_format", ["table", "json", "csv"])
def test_a_time_python_cannot_hold_is_shown_as_duckdbs_text_not_a_traceback(
    tmp_path, output_format
):
    """A damaged page can decode to a time before year 1 (seen: 0323-04-24 BC); DuckDB hands
    Python its text, which the listing printed with an AttributeError traceback."""
    settings, logs_dir, _ = logs_with_files(tmp_path)
    row = outbound_row("bc-1", 0)
    table = pa.Table.from_pylist([row]).set_column(
        0,
        "timestamp",
        pa.array([-74_000_000_000_000_000], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    )
    write_parquet(table, partition_dir(logs_dir, "outbound_log", date(2024, 3, 1)))

    result = run(settings, "outbound", "--format", output_format, "--limit", "0")

    assert result.exit_code == 0, result.output
    assert "(BC)" in result.output and "bc-1" in result.output
