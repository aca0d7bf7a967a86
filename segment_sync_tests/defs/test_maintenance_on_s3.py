"""The hourly log maintenance as a real Dagster run over logs on S3 (`logs.dir: s3://...`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.settings import load_settings


def test_a_maintenance_run_trims_and_compacts_s3_logs_and_records_itself(write_settings, s3_url):
    path = write_settings(logs={"dir": s3_url, "retention_days": 30})
    writer = LogWriter(load_settings(path).logs.dir)
    now = datetime.now(UTC)
    for age_h in (40 * 24, 1, 1, 1):
        stamp = now - timedelta(hours=age_h)
        writer.write(
            "outbound_messages",
            [{"timestamp": stamp, "message_id": f"m-{age_h}-{stamp}", "outcome": "delivered"}],
        )
    with dg.instance_for_test() as instance:
        job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
        result = job.execute_in_process(instance=instance)
    [output] = [e for e in result.all_events if e.is_successful_output]
    metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert metadata["rows_removed"] == 1
    assert metadata["analytics_db"].startswith("none on object storage")
    with connect(s3_url) as con:
        assert con.execute("SELECT count(*) FROM outbound_messages").fetchone() == (3,)
        runs = con.execute("SELECT job, status FROM sync_runs").fetchall()
    assert runs == [("log_maintenance_job", "success")]
