"""A failed Dagster run whose URL settings hold passwords shows none of them: not in the run's
tags, its event log (descriptions, metadata, messages), its `sync_runs` row or its alert."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from segment_sync.definitions import build_definitions
from segment_sync.defs.alerts import RUN_ALERT_SENSOR
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync.standins.segment import SegmentFaults, SegmentStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.alerts.receiver import AlertReceiver, serve_receiver
from segment_sync_tests.conftest import WRITE_KEY, fresh_pg_database
from segment_sync_tests.url_passwords import (
    leaked_rows,
    log_rows,
    passwords,
    with_password,
)

ALERTS_ENV = "TEST_URL_PASSWORD_ALERTS_URL"
REFUSED_KEY = "a-write-key-segment-does-not-know"  # the strict stand-in answers HTTP 401


@dataclass(frozen=True)
class World:
    pg_url: str
    segment_url: str
    alerts: AlertReceiver
    root: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    # strict_auth (NOT Segment's documented 200-and-drop): this test needs a failed run whose
    # description carries the endpoint URL, and a 401 is the failure that names it.
    segment = SegmentStandin("us", {WRITE_KEY: "us"}, SegmentFaults(seed=9), strict_auth=True)
    with (
        fresh_pg_database() as pg_url,
        serve_in_thread(segment.app) as segment_url,
        serve_receiver() as alerts,
    ):
        yield World(pg_url, segment_url, alerts, tmp_path_factory.mktemp("dagster-passwords"))


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _alert_tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> str:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"settings": defs.resources["settings"]},
    )
    defs.resolve_sensor_def(RUN_ALERT_SENSOR)(context)
    return context.cursor


@settings(max_examples=4, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords(for_http=True), db_password=passwords(for_http=False))
def test_a_failed_run_shows_no_url_password_in_tags_events_records_or_alerts(
    world, password, db_password
):
    folder = world.root / uuid.uuid4().hex[:8]
    folder.mkdir()
    database = with_password(world.pg_url.replace("postgres@", "", 1), "postgres", db_password)
    data = {
        "loyalty_store": {"url": database},
        "outbound": {
            "base_url": with_password(world.segment_url, "sync", password),
            "state_url": database,
            "event_sync": ["point_add"],
            "max_retries": 0,
            "follow_s": 0,
        },
        "alerts": {
            "webhook_url_env": ALERTS_ENV,
            "ui_base_url": with_password("http://dagster.example:3000", "ops", password),
        },
        "logs": {"dir": str(folder / "logs")},
    }
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1})]
    )
    world.alerts.delivered.clear()
    with (
        _environ(SEGMENT_WRITE_KEY=REFUSED_KEY, **{ALERTS_ENV: world.alerts.url}),
        dg.instance_for_test() as instance,
    ):
        defs = build_definitions(str(path))
        cursor = _alert_tick(defs, instance, None)
        run = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        _alert_tick(defs, instance, cursor)
        tags = dict(instance.get_run_by_id(run.run_id).tags)
        events = [dg.serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    [failure] = run.get_step_failure_events()
    description = failure.event_specific_data.user_failure_data.description
    assert not run.success and "HTTP 401 at http://sync:[REDACTED]@127.0.0.1" in description
    [alert] = world.alerts.delivered
    assert f"Run: http://ops:[REDACTED]@dagster.example:3000/runs/{run.run_id}" in alert
    for p in (password, db_password):
        assert not p.leaks_in(repr(tags)) and not p.leaks_in(alert), (tags, alert)
        assert leaked_rows(events, p) == []
        assert leaked_rows(log_rows(folder / "logs"), p) == []  # sync_runs and request rows
