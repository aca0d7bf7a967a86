"""The log checks with several destinations: real runs to an EU and a US stand-in, then a real
run of log_checks_job; each destination is judged on its own assets, from its own log rows and
its own progress, so one fails while the other passes, and the failure's alert names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.definitions import build_definitions
from segment_sync.defs.alerts import CHECK_ALERT_SENSOR
from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.alerts.receiver import serve_receiver
from segment_sync_tests.defs.test_alerts import ALERTS, WEBHOOK_ENV, Sensor
from segment_sync_tests.outbound.regions import two_regions

EU_TRACK, US_TRACK = "segment_track_calls_eu", "segment_track_calls_us"
EU_IDENTIFY, US_IDENTIFY = "segment_identify_calls_eu", "segment_identify_calls_us"
AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
HALF_AN_HOUR = {"checks": {"undelivered_event_age_max_minutes": 30}}


@pytest.fixture
def receiver(monkeypatch):
    with serve_receiver() as receiver:
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        yield receiver


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def _settings(write_settings, regions, **sections):
    """Two destinations routed by country, no retries (an outage fails the run at once)."""
    path = write_settings(outbound={**regions.outbound(), "max_retries": 0}, **sections)
    data = yaml.safe_load(path.read_text())
    data["outbound"].pop("base_url", None)
    path.write_text(yaml.safe_dump(data))
    return path


def _customers(path, *events: tuple[str, datetime | None]) -> LoyaltyStore:
    """anna in DE (eu) and bob in US (us), and their point_add events."""
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    before = AN_HOUR_AGO - timedelta(hours=1)
    store.append_profile_changes(
        [
            NewProfileChange("anna", {"country": "DE"}, occurred_at=before),
            NewProfileChange("bob", {"country": "US"}, occurred_at=before),
        ]
    )
    store.append_events([NewEvent(c, "point_add", occurred_at=t) for c, t in events])
    return store


def _send(path, destination: str) -> bool:
    return run_manual_outbound(
        load_settings(path), "events", f"run-{destination}", echo=lambda _: None,
        destination=destination,
    )  # fmt: skip


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    """One real run of log_checks_job; its evaluations by (asset, check name)."""
    run = defs.resolve_job_def("log_checks_job").execute_in_process(instance=instance)
    assert run.success
    return {
        (e.asset_key.to_user_string(), e.check_name): e for e in run.get_asset_check_evaluations()
    }


def _checks(path) -> dict:
    with dg.instance_for_test() as instance:
        return _evaluate(build_definitions(str(path)), instance)


def _meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def test_each_destination_is_checked_on_its_own_assets(write_settings, regions):
    checks = _checks(_settings(write_settings, regions))
    assert set(checks) == {
        (EU_TRACK, "outbound_error_rate_eu"),
        (EU_IDENTIFY, "outbound_error_rate_eu"),
        (EU_TRACK, "oldest_undelivered_event_eu"),
        (US_TRACK, "outbound_error_rate_us"),
        (US_IDENTIFY, "outbound_error_rate_us"),
        (US_TRACK, "oldest_undelivered_event_us"),
        ("inbound_log", "inbound_failed_items"),
        ("loyalty_events", "loyalty_source_alive"),
    }
    assert all(e.passed for e in checks.values())


def test_an_eu_outage_fails_the_eu_error_rate_while_the_us_one_passes(write_settings, regions):
    path = _settings(write_settings, regions)
    _customers(path, ("anna", None), ("bob", None), ("bob", None))
    regions.eu.set_faults(outage_requests=5)
    assert not _send(path, "eu")
    assert _send(path, "us")

    checks = _checks(path)
    eu, us = checks[EU_TRACK, "outbound_error_rate_eu"], checks[US_TRACK, "outbound_error_rate_us"]
    assert not eu.passed and eu.severity == dg.AssetCheckSeverity.ERROR
    assert _meta(eu)["messages"] == 1 and _meta(eu)["undelivered"] == 1
    assert eu.description.startswith("destination eu (track): 1 of 1 message(s) not delivered")
    assert us.passed and _meta(us)["messages"] == 2 and _meta(us)["undelivered"] == 0
    assert _meta(eu)["destination"] == "eu" and _meta(us)["destination"] == "us"


def test_the_oldest_undelivered_event_is_judged_against_each_destinations_own_progress(
    write_settings, regions
):
    path = _settings(write_settings, regions, maintenance=HALF_AN_HOUR)
    store = _customers(path, ("anna", AN_HOUR_AGO), ("bob", AN_HOUR_AGO))
    assert _send(path, "us")  # only the US has sent: the EU's anna waits an hour
    [late_anna] = store.append_events([NewEvent("anna", "point_add", occurred_at=AN_HOUR_AGO)])

    checks = _checks(path)
    eu = checks[EU_TRACK, "oldest_undelivered_event_eu"]
    us = checks[US_TRACK, "oldest_undelivered_event_us"]
    assert not eu.passed and _meta(eu)["watermark"] == 0
    assert eu.description.startswith("destination eu: ")
    assert _meta(eu)["oldest_pending_age_minutes"] >= 59
    # anna's event waits above the US progress too, but she is not the US's customer
    assert us.passed and _meta(us)["watermark"] == late_anna - 1
    assert "oldest_pending_event_id" not in _meta(us)


def test_a_destinations_failed_check_alert_names_the_destination(
    write_settings,
    regions,
    receiver,  # noqa: F811
):
    path = _settings(write_settings, regions, alerts=ALERTS)
    _customers(path, ("anna", None), ("bob", None))
    regions.eu.set_faults(outage_requests=5)
    assert not _send(path, "eu")
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, CHECK_ALERT_SENSOR, instance)
        sensor.tick()
        _evaluate(defs, instance)
        sensor.tick()
    [text] = receiver.delivered
    assert text.startswith(f"[segment-sync] Check failed: {EU_TRACK} / outbound_error_rate_eu\n")
    assert "Why: destination eu (track): 1 of 1 message(s) not delivered" in text
