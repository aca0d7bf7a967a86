"""A run whose own record cannot be written because S3 answers SlowDown (a blip) is tagged
"transient" and retried, not "configuration" with the folder-permissions fix."""

from __future__ import annotations

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync_tests.logs.s3_fixtures import S3Server
from segment_sync_tests.logs.slow_down_s3 import slow_down_s3


def test_a_slow_down_while_writing_the_runs_record_is_transient(
    write_settings, s3_server: S3Server
):
    url = s3_server.new_logs_url()  # the test S3, reached through a server slowing one PUT
    with slow_down_s3(s3_server.endpoint, slowed="/sync_runs/") as endpoint:
        path = write_settings(logs={"dir": url.replace(s3_server.endpoint, endpoint)})
        job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            [run] = instance.get_runs()

    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failures[-1].step_failure_data.error.message
    assert "could not write sync_runs rows" in message
    assert run.tags["segment_sync/failure_kind"] == "transient", message
    assert run.tags.get("dagster/retry_on_asset_or_op_failure") != "false"
