"""Which maintenance failures a person must fix ("configuration", not retried) and which a
later run may get past ("transient"): real folders and a real S3 server that refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from segment_sync.logs.incomplete import FOLDER_FIX, S3_FIX, MaintenanceIncomplete, person_fix
from segment_sync.logs.layout import table_dir
from segment_sync.logs.maintenance import maintain_logs
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.store import LogWriter
from segment_sync_tests.logs.s3_fixtures import S3Server

NOW = datetime.now(UTC)


def write_messages(logs_dir: Path | str, files: int = 3) -> None:
    writer = LogWriter(logs_dir)
    for n in range(files):
        message = {"timestamp": NOW, "message_id": f"m{n}", "outcome": "delivered"}
        writer.write("outbound_messages", [message])


def incomplete(logs_dir: Path | str, **options: float) -> MaintenanceIncomplete:
    with pytest.raises(MaintenanceIncomplete) as raised:
        maintain_logs(logs_dir, retention_days=90, min_files=2, **options)
    return raised.value


def test_a_table_folder_that_is_a_file_is_for_a_person_to_fix(tmp_path: Path) -> None:
    write_messages(tmp_path)
    folder = table_dir(tmp_path, "inbound_log")
    shutil.rmtree(folder)
    folder.write_text("not a folder")  # e.g. a bad copy or mount

    failed = incomplete(tmp_path)

    assert list(failed.failures) == ["inbound_log"]
    assert failed.kind == "configuration"
    assert FOLDER_FIX in str(failed)


# Maintenance in a child process that reports how it failed. Root reads and writes any folder
# whatever its mode (CAP_DAC_OVERRIDE): as root the child runs without those capabilities.
MAINTAIN = """
import json, sys
from segment_sync.logs.incomplete import MaintenanceIncomplete
from segment_sync.logs.maintenance import maintain_logs
try:
    maintain_logs(sys.argv[1], retention_days=90, min_files=2)
    print(json.dumps(None))
except MaintenanceIncomplete as exc:
    failures = {t: type(e).__name__ for t, e in exc.failures.items()}
    print(json.dumps({"kind": exc.kind, "failures": failures, "message": str(exc)}))
"""
NO_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def maintain_in_a_process_bound_by_modes(logs_dir: Path) -> dict:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root reads a folder whatever its mode, and setpriv is not installed")
    prefix = NO_DAC_OVERRIDE if os.geteuid() == 0 else []
    child = subprocess.run(
        [*prefix, sys.executable, "-c", MAINTAIN, str(logs_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(child.stdout)


def test_an_unreadable_table_folder_is_for_a_person_to_fix(tmp_path: Path) -> None:
    write_messages(tmp_path)
    folder = table_dir(tmp_path, "outbound_messages")
    folder.chmod(0)
    try:
        failed = maintain_in_a_process_bound_by_modes(tmp_path)
    finally:
        folder.chmod(0o755)

    assert failed["failures"] == {"outbound_messages": "PermissionError"}, failed
    assert failed["kind"] == "configuration" and FOLDER_FIX in failed["message"]


def test_a_policy_that_refuses_writes_is_for_a_person_to_fix(
    s3_server: S3Server, request: pytest.FixtureRequest
) -> None:
    url = s3_server.new_logs_url()
    write_messages(url)  # with the test keys, which may do anything
    request.getfixturevalue("refusing_s3")  # from here on, a reader's keys

    failed = incomplete(url)

    error = failed.failures["outbound_messages"]
    assert "AccessDenied" in str(error), error
    assert failed.kind == "configuration"
    assert S3_FIX in str(failed) and "AccessDenied" in str(failed)
    assert "ClientError" not in str(failed).replace("AccessDenied", "")  # its words, not a kind


def test_a_bucket_that_does_not_exist_is_for_a_person_to_fix(s3_server: S3Server) -> None:
    url = f"s3://no-such-bucket-here/logs?endpoint={s3_server.endpoint}"

    # A lease that cannot be taken at once would be "busy": the bucket must not look like one.
    failed = incomplete(url, lock_timeout_s=0.5)

    assert set(failed.failures) == {"outbound_log", "outbound_messages", "inbound_log",
                                    "inbound_items", "sync_runs"}  # fmt: skip
    assert all("NoSuchBucket" in str(e) for e in failed.failures.values()), failed.failures
    assert failed.kind == "configuration" and S3_FIX in str(failed)


def test_a_busy_or_unforeseen_failure_stays_transient(tmp_path: Path) -> None:
    failed = MaintenanceIncomplete([], {"outbound_log": ConnectionResetError(104, "reset")}, [])

    assert failed.kind == "transient" and "To fix" not in str(failed)


def test_pyarrow_refused_by_s3_is_for_a_person_to_fix(
    s3_server: S3Server, request: pytest.FixtureRequest
) -> None:
    url = s3_server.new_logs_url()
    missing = S3Logs.parse(f"s3://no-such-bucket-here/logs?endpoint={s3_server.endpoint}")
    request.getfixturevalue("refusing_s3")  # a reader's keys: pyarrow's PutObject is refused
    logs = S3Logs.parse(url)

    refusals = []
    for fs, path in [(logs.fs, logs.path("x.parquet")), (missing.fs, missing.path("x.parquet"))]:
        with pytest.raises(OSError) as raised, fs.open_output_stream(path) as out:
            out.write(b"x")
        refusals.append(raised.value)

    assert "AWS Error ACCESS_DENIED" in str(refusals[0]), refusals[0]
    assert "AWS Error" in str(refusals[1]), refusals[1]
    assert [person_fix(e) for e in refusals] == [S3_FIX, S3_FIX]
