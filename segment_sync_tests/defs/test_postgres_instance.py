"""deploy/postgres/dagster.yaml: a Dagster instance on PostgreSQL (dagster-postgres) runs our jobs."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_outbound_run_is_recorded_in_a_postgres_backed_instance(
    pg_url, write_settings, segment_standin, tmp_path, monkeypatch
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    # dagster-postgres needs psycopg2 (its NOTIFY uses client-side binding); SQLAlchemy 2.1
    # would pick psycopg 3 for a bare postgresql:// URL.
    monkeypatch.setenv("DAGSTER_PG_URL", pg_url.replace("postgresql://", "postgresql+psycopg2://"))
    path = write_settings(outbound={"base_url": segment_standin.url})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 3})]
    )
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = job.execute_in_process(instance=instance)
        assert result.success
        (run,) = instance.get_runs()
        assert run.run_id == result.run_id and run.status == dg.DagsterRunStatus.SUCCESS
    assert len(segment_standin.accepted_message_ids()) == 1
