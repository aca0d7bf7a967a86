"""A real outbound run with `logs.dir: s3://...`: its logs land on S3 and every reader finds
them (`logs sql`, `logs outbound`, the run's own counts); settings refuse credentials in the URL
without showing them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.settings import SettingsError, load_settings


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_run_logs_to_s3_and_logs_sql_reads_it(write_settings, segment_standin, s3_url) -> None:
    path = write_settings(outbound={"base_url": segment_standin.url}, logs={"dir": s3_url})
    invoke("demo", "seed", "--events", "60", "--profiles", "0", "--settings", str(path))
    run = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert run.exit_code == 0, run.output
    assert "succeeded" in run.output
    query = "SELECT count(*) AS n FROM outbound_messages WHERE outcome = 'delivered'"
    result = invoke("logs", "sql", "--settings", str(path), "--format", "json", query)
    assert result.exit_code == 0, result.output
    delivered = len(segment_standin.accepted_message_ids())
    assert delivered > 0
    assert json.loads(result.stdout) == [{"n": delivered}]


def test_logs_outbound_lists_the_requests_of_a_run_on_s3(
    write_settings, segment_standin, s3_url
) -> None:
    path = write_settings(outbound={"base_url": segment_standin.url}, logs={"dir": s3_url})
    invoke("demo", "seed", "--events", "30", "--profiles", "0", "--settings", str(path))
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 0
    result = invoke("logs", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "track" in result.output and "200" in result.output


def test_an_s3_logs_dir_is_kept_as_written_not_resolved_as_a_folder(write_settings, s3_url):
    settings = load_settings(str(write_settings(logs={"dir": s3_url})))
    assert settings.logs.dir == s3_url


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/logs?secret_key=hunter2-s3cret",
        "s3://AKIAEXAMPLE:hunter2-s3cret@bucket/logs",
    ],
    ids=["query", "userinfo"],
)
def test_credentials_in_an_s3_url_are_refused_and_never_shown(write_settings, url) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(str(write_settings(logs={"dir": url})))
    message = str(raised.value)
    assert "logs.dir" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "hunter2" not in message


def test_logs_check_says_in_one_line_what_checks_files_on_s3(write_settings, s3_url) -> None:
    result = invoke("logs", "check", "--settings", str(write_settings(logs={"dir": s3_url})))
    assert result.exit_code == 1
    assert "log_maintenance_job" in result.output and "Traceback" not in result.output


def test_the_sql_prompt_over_s3_sees_rows_written_after_it_opened(write_settings, s3_url) -> None:
    from datetime import UTC, datetime

    from segment_sync.logs.store import LogWriter
    from segment_sync_tests.cli.test_logs_sql_program import Terminal

    path = write_settings(logs={"dir": s3_url})
    writer = LogWriter(s3_url)
    row = {"timestamp": datetime.now(UTC), "outcome": "delivered"}
    writer.write("outbound_messages", [{**row, "message_id": "before"}])
    terminal = Terminal(path)
    try:
        terminal.wait_for("logs> ")
        terminal.type("SELECT count(*) AS n FROM outbound_messages;\r")
        first = terminal.wait_for("logs> ")
        writer.write("outbound_messages", [{**row, "message_id": "after"}])
        terminal.type("SELECT count(*) AS n FROM outbound_messages;\r")
        second = terminal.wait_for("logs> ")
        terminal.type(".quit\r")
    finally:
        assert terminal.close() == 0
    assert _answer(first) == "1" and _answer(second) == "2"


def _answer(echoed: str) -> str:
    """The single value of a one-row, one-column table the prompt printed."""
    lines = [line.strip() for line in echoed.splitlines()]
    return lines[lines.index("-") + 1]
