"""`segment-sync instance prepare`: many processes starting on a new instance database at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from segment_sync.defs.instance_storage import (
    ADVISORY_LOCK_KEY,
    InstancePrepareError,
    postgres_url,
    prepare_instance,
)

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "segment-sync")
PROCESSES = 8


def _celery_home(tmp_path: Path, pg_url: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_url.replace("postgresql://", "postgresql+psycopg2://", 1),
    }


# Imports first, then every process waits for the go file, so all reach the storage together.
_AT_ONCE = """
import sys, time
from pathlib import Path
import dagster, dagster_postgres  # imported before the barrier, so none is still importing
from segment_sync.defs.instance_storage import prepare_instance
go = Path(sys.argv[1])
Path(sys.argv[2]).touch()
while not go.exists():
    time.sleep(0.001)
print(prepare_instance())
"""


@pytest.mark.postgres
def test_eight_processes_preparing_a_new_database_at_once_all_succeed(
    tmp_path, pg_url, monkeypatch
):
    env = _celery_home(tmp_path, pg_url)
    monkeypatch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_ONCE, str(go), str(tmp_path / f"ready-{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, outputs
    assert all("Dagster instance storage ready: PostgreSQL" in o for o in outputs), outputs
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_runs() == []  # the run, event log and schedule tables exist


@pytest.mark.postgres
def test_the_command_prepares_the_instance_and_says_where(tmp_path, pg_url):
    env = _celery_home(tmp_path, pg_url)
    done = subprocess.run(
        [CLI, "instance", "prepare"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "Dagster instance storage ready: PostgreSQL postgresql+psycopg2://"
    )


def test_the_url_comes_from_the_env_variable_dagster_yaml_names(monkeypatch):
    monkeypatch.setenv("SOME_PG", "postgresql+psycopg2://u:pw@db:5432/dagster")
    config = {"storage": {"postgres": {"postgres_url": {"env": "SOME_PG"}}}}
    assert postgres_url(config) == "postgresql+psycopg2://u:pw@db:5432/dagster"


def test_postgres_db_fields_make_the_url(monkeypatch):
    monkeypatch.setenv("PG_PASSWORD", "s3cret")
    db = {"username": "u", "password": {"env": "PG_PASSWORD"}, "hostname": "h", "db_name": "d"}
    config = {"storage": {"postgres": {"postgres_db": db}}}
    assert postgres_url(config) == "postgresql://u:s3cret@h:5432/d"


def test_sqlite_storage_has_no_postgres_url():
    assert postgres_url({"storage": {"sqlite": {"base_dir": "x"}}}) is None


def test_an_unset_variable_is_named_and_its_value_never_shown(monkeypatch):
    monkeypatch.delenv("NOT_SET_PG_URL", raising=False)
    config = {"storage": {"postgres": {"postgres_url": {"env": "NOT_SET_PG_URL"}}}}
    with pytest.raises(InstancePrepareError, match="NOT_SET_PG_URL, which is not set"):
        postgres_url(config)


def test_sqlite_storage_is_prepared_in_place(tmp_path):
    (tmp_path / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {tmp_path}/s\n")
    assert prepare_instance(tmp_path) == f"Dagster instance storage ready: SQLite under {tmp_path}"
    assert (tmp_path / "s").is_dir()


def test_a_missing_dagster_yaml_names_dagster_home(tmp_path):
    with pytest.raises(InstancePrepareError, match="dagster.yaml does not exist: DAGSTER_HOME"):
        prepare_instance(tmp_path)


@pytest.mark.postgres
def test_an_unreachable_server_is_one_line_without_the_password(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
    )
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:hunter22@127.0.0.1:1/dagster")
    with pytest.raises(InstancePrepareError) as raised:
        prepare_instance(tmp_path)
    assert "hunter22" not in str(raised.value)
    assert "check DAGSTER_PG_URL" in str(raised.value)


@pytest.mark.postgres
def test_prepare_creates_nothing_while_another_process_holds_the_lock(tmp_path, pg_url):
    env = _celery_home(tmp_path, pg_url)
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        holder.commit()
        proc = subprocess.Popen(
            [CLI, "instance", "prepare"], env=env, stdout=subprocess.PIPE, text=True
        )
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        deadline = time.monotonic() + 120
        while holder.execute(sa.text(waiting)).scalar() == 0:
            assert proc.poll() is None, "prepare ended without waiting for the lock"
            assert time.monotonic() < deadline, "prepare never asked for the lock"
            time.sleep(0.05)
        assert "runs" not in sa.inspect(holder).get_table_names()
        holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        holder.commit()
        assert proc.wait(120) == 0
    assert "runs" in sa.inspect(engine).get_table_names()
    engine.dispose()
