"""A LogWriteError's kind is its cause's: a network error or 503 SlowDown while writing to S3
(or EIO) is "transient" (retried); a refusal, a full disk or a file in the path is
"configuration". The same rule as MaintenanceIncomplete.kind."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest

from segment_sync.logs.incomplete import MaintenanceIncomplete, failure_kind
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync_tests.logs.s3_fixtures import S3_ENV, S3Server
from segment_sync_tests.logs.slow_down_s3 import closed_port, slow_down_s3

ROW = {"timestamp": datetime.now(UTC), "message_id": "m", "outcome": "delivered"}


def write_error(logs_dir: str | Path) -> LogWriteError:
    with pytest.raises(LogWriteError) as raised:
        LogWriter(logs_dir).write("outbound_messages", [ROW])
    return raised.value


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("s3_env")
def test_s3_answering_slow_down_is_transient() -> None:
    with slow_down_s3() as endpoint:
        error = write_error(f"s3://logs/segment-sync?endpoint={endpoint}")
    assert "SLOW_DOWN" in str(error.cause)
    assert failure_kind(error) == "transient"
    assert MaintenanceIncomplete([], {"sync_runs": error}, []).kind == "transient"


@pytest.mark.usefixtures("s3_env")
def test_s3_out_of_reach_is_transient() -> None:
    error = write_error(f"s3://logs/segment-sync?endpoint={closed_port()}")
    assert "NETWORK_CONNECTION" in str(error.cause)
    assert failure_kind(error) == "transient"


def test_an_s3_policy_that_refuses_the_write_stays_configuration(
    s3_server: S3Server, request: pytest.FixtureRequest
) -> None:
    url = s3_server.new_logs_url()
    request.getfixturevalue("refusing_s3")
    error = write_error(url)
    assert failure_kind(error) == "configuration"
    assert MaintenanceIncomplete([], {"sync_runs": error}, []).kind == "configuration"


def test_a_file_in_the_path_of_logs_dir_stays_configuration(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LogWriteError) as raised:
        LogWriter(tmp_path / "file" / "logs")
    assert raised.value.cause.errno == errno.ENOTDIR
    assert failure_kind(raised.value) == "configuration"


@pytest.mark.parametrize(
    ("code", "kind"),
    [(errno.ENOSPC, "configuration"), (errno.EROFS, "configuration"), (errno.EIO, "transient")],
)
def test_a_local_cause_decides_by_its_errno(tmp_path: Path, code: int, kind: str) -> None:
    # a full, read-only or failing (an NFS soft mount's timeout is EIO) disk, as the OS says it
    error = LogWriteError("sync_runs rows", tmp_path, OSError(code, "as the OS says it"))
    assert failure_kind(error) == kind
