"""The Dagster instances the repository ships (dagster.yaml, deploy/postgres, deploy/celery) load,
and none greets a newcomer with Dagster's "Join the community" dialog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import dagster as dg
import pytest

from segment_sync_tests.conftest import fresh_pg_database
from segment_sync_tests.dagster_dev_harness import dagster_home

SHIPPED = ["dagster.yaml", "deploy/postgres/dagster.yaml", "deploy/celery/dagster.yaml"]


@contextmanager
def _pg_for(shipped: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The PostgreSQL database a deploy/ instance names through DAGSTER_PG_URL."""
    with fresh_pg_database() as url:
        # dagster-postgres binds NOTIFY parameters client-side: psycopg2, as the files say.
        monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql://", "postgresql+psycopg2://"))
        yield


@pytest.mark.parametrize("shipped", SHIPPED)
def test_each_shipped_instance_loads_with_the_community_dialog_off(shipped, tmp_path, monkeypatch):
    home = dagster_home(tmp_path, shipped)
    database = _pg_for(shipped, monkeypatch) if shipped.startswith("deploy/") else nullcontext()
    with database, dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_settings("nux") == {"enabled": False}
        assert instance.nux_enabled is False
        assert instance.get_settings("telemetry") == {"enabled": False}
