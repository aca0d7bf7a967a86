"""executor.kind picks the executor of every job; Celery reads its URLs from named variables."""

from __future__ import annotations

import pytest

from segment_sync.definitions import build_definitions
from segment_sync.settings import SettingsError, load_settings


def test_jobs_run_on_dagsters_default_executor_unless_the_settings_say_celery(write_settings):
    job = build_definitions(str(write_settings())).resolve_job_def("inbound_ingest_job")
    assert job.executor_def.name == "multi_or_in_process_executor"


def test_the_outbound_step_runs_in_its_run_worker_so_a_stop_reaches_it_there(write_settings):
    job = build_definitions(str(write_settings())).resolve_job_def("outbound_sync_job")
    assert job.executor_def.name == "in_process"


def test_executor_kind_celery_runs_every_sync_job_on_the_celery_executor(write_settings):
    defs = build_definitions(str(write_settings(executor={"kind": "celery"})))
    for name in ("outbound_sync_job", "inbound_ingest_job", "outbound_replay_job"):
        assert defs.resolve_job_def(name).executor_def.name == "celery"


def test_the_celery_urls_are_secrets_named_by_variables(write_settings, monkeypatch):
    monkeypatch.setenv("MY_BROKER", "amqp://user:hunter2@mq:5672//")
    path = write_settings(executor={"kind": "celery", "celery_broker_url_env": "MY_BROKER"})
    settings = load_settings(path)
    assert {"MY_BROKER", "DAGSTER_CELERY_BACKEND_URL"} <= set(settings.secret_env_names())


def test_an_unknown_executor_kind_is_refused_naming_the_choices(write_settings):
    with pytest.raises(SettingsError, match="executor.kind.*'multiprocess' or 'celery'"):
        load_settings(write_settings(executor={"kind": "k8s"}))
