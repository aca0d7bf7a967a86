"""A maintenance run that a person must fix says so: run tag `segment_sync/failure_kind` is
"configuration" (not retried) and its message names the fix; real folders, a real S3 server."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import dagster as dg
import pytest

from segment_sync.definitions import build_definitions
from segment_sync.logs.incomplete import S3_FIX
from segment_sync.logs.layout import table_dir
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync_tests.logs.s3_fixtures import S3Server


def write_messages(logs_dir: str) -> None:
    writer = LogWriter(logs_dir)
    for n in range(3):
        stamp = datetime.now(UTC)
        writer.write(
            "outbound_messages",
            [{"timestamp": stamp, "message_id": f"m{n}", "outcome": "delivered"}],
        )


def failed_run(path) -> tuple[str, dict[str, str]]:
    """Run the maintenance job; its failure message and the run's tags."""
    job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        [run] = instance.get_runs()
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.error.message, run.tags


def test_a_logs_dir_with_a_file_in_its_path_fails_the_run_as_configuration(write_settings):
    path = write_settings()
    logs_dir = load_settings(path).logs.dir
    write_messages(logs_dir)
    folder = table_dir(logs_dir, "inbound_log")
    shutil.rmtree(folder)
    folder.write_text("not a folder")

    message, tags = failed_run(path)

    assert tags["segment_sync/failure_kind"] == "configuration", message
    # The run's own log writer meets it first, before any table: it names logs.dir and the fix.
    assert f"under logs.dir ({logs_dir}): Not a directory" in message
    assert "make it a writable folder" in message


def test_an_s3_policy_that_refuses_writes_fails_the_run_as_configuration(
    write_settings, s3_server: S3Server, request: pytest.FixtureRequest
):
    url = s3_server.new_logs_url()
    path = write_settings(logs={"dir": url})
    write_messages(url)
    request.getfixturevalue("refusing_s3")

    message, tags = failed_run(path)

    assert tags["segment_sync/failure_kind"] == "configuration", message
    assert "AccessDenied" in message and S3_FIX in message
