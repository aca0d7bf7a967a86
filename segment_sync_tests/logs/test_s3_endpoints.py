"""An S3 endpoint must be http(s)://host[:port]: anything else is one line before any run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.logs.object_store import LogsUrlError
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.settings import SettingsError, load_settings
from segment_sync_tests.logs.test_s3_store import _messages

PASSWORD = "pa55-never-shown"


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


def _refused_settings(write_settings, endpoint: str) -> str:
    path = write_settings(logs={"dir": f"s3://logs/segment-sync?endpoint={endpoint}"})
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    return str(raised.value)


def test_settings_refuse_an_endpoint_without_a_scheme_naming_the_key(write_settings) -> None:
    message = _refused_settings(write_settings, "minio:9000")
    assert "logs.dir: its ?endpoint= must be http(s)://host[:port]" in message


def test_settings_refuse_credentials_in_the_endpoint_without_showing_them(write_settings) -> None:
    message = _refused_settings(write_settings, f"http://admin:{PASSWORD}@minio:9000")
    assert "logs.dir: its ?endpoint= holds credentials" in message
    assert PASSWORD not in message and "admin" not in message


def test_an_endpoint_in_the_environment_without_a_scheme_is_refused_naming_the_variable(
    monkeypatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "minio:9000")
    with pytest.raises(LogsUrlError, match=r"^AWS_ENDPOINT_URL must be http\(s\)://host"):
        LogWriter("s3://logs/segment-sync")


def test_credentials_in_the_environments_endpoint_are_refused_without_showing_them(
    monkeypatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"admin:{PASSWORD}@minio:9000")
    with pytest.raises(LogsUrlError, match="^AWS_ENDPOINT_URL_S3 holds credentials") as raised:
        LogWriter("s3://logs/segment-sync")
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize("command", [["logs", "sql", "SELECT 1"], ["run", "outbound"]])
def test_the_commands_say_so_in_one_line(write_settings, monkeypatch, command) -> None:
    path = write_settings(logs={"dir": "s3://logs/segment-sync"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "minio:9000")
    result = CliRunner().invoke(main, [*command[:2], "--settings", str(path), *command[2:]])
    assert result.exit_code == 1 and result.exception is not None
    assert result.output.startswith("Error: AWS_ENDPOINT_URL must be http(s)://host[:port]")
    assert len(result.output.strip().splitlines()) == 1


def test_an_arrow_error_while_flushing_is_a_log_write_error_and_the_rows_stay_queued(
    s3_server,
) -> None:
    writer = LogWriter(s3_server.new_logs_url("a//b"))  # S3 refuses the empty path component
    writer.extend("outbound_messages", _messages("a", 2))
    with pytest.raises(LogWriteError, match="could not write outbound_messages rows") as raised:
        writer.flush()
    assert "\n" not in str(raised.value) and "Empty path component" in str(raised.value)
    assert writer.pending("outbound_messages") == 2
