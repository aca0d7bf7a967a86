"""Alert sensors on a real Dagster instance: failed runs and checks reach a real local webhook,
each once, with the job or check, the reason and the run's link, and never a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from segment_sync.definitions import build_definitions
from segment_sync.defs.alerts import CHECK_ALERT_SENSOR, MAX_FAILED_TICKS, RUN_ALERT_SENSOR
from segment_sync.defs.resources import SegmentResource
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.alerts.receiver import TOKEN, serve_receiver
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WRITE_KEY

WEBHOOK_ENV = "TEST_ALERTS_WEBHOOK_URL"
ALERTS = {"webhook_url_env": WEBHOOK_ENV, "ui_base_url": "http://dagster.test:3000"}


@pytest.fixture
def receiver(monkeypatch):
    with serve_receiver() as receiver:
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        yield receiver


class Sensor:
    """One alert sensor ticked by hand the way the daemon does: its cursor carried over."""

    def __init__(self, defs: dg.Definitions, name: str, instance: dg.DagsterInstance) -> None:
        self.defs, self.name, self.instance, self.cursor = defs, name, instance, None

    def tick(self) -> str:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            # Only what the sensor uses, as the daemon does (the others read env vars at setup).
            resources={"settings": self.defs.resources["settings"]},
        )
        result = self.defs.resolve_sensor_def(self.name)(context)
        self.cursor = context.cursor
        assert isinstance(result, dg.SkipReason)  # alerts request no runs
        return result.skip_message


class LeakyVault(SegmentResource):
    """Fails while the run starts, with every secret, the webhook URL and its token alone."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise RuntimeError(
            f"vault refused {WRITE_KEY} / {ANTAVO_KEY}:{ANTAVO_SECRET}; would page {self.write_key}"
            f" (path /services/{TOKEN})"
        )


def _segment_down(write_settings, segment_standin, **alerts):
    """Settings whose outbound run fails for real: one event, Segment answering 503."""
    path = write_settings(
        outbound={"base_url": segment_standin.url, "max_retries": 0}, alerts={**ALERTS, **alerts}
    )
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1})]
    )
    segment_standin.set_faults(outage_requests=1000)
    return path


def _fail_outbound(defs, instance, **kw) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
        instance=instance, raise_on_error=False, **kw
    )
    assert not result.success
    return result


def test_a_failed_sync_run_posts_one_alert_with_the_job_the_reason_and_the_link(
    write_settings, segment_standin, receiver
):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        assert "started" in sensor.tick()
        run = _fail_outbound(defs, instance)
        skip = sensor.tick()
    [text] = receiver.delivered
    assert text.startswith("[segment-sync] Sync run failed: outbound_sync_job\nWhy: ")
    assert "sync_outbound_stream: 0 message(s) failed, 1 stayed pending" in text
    assert "HTTP 503" in text
    assert f"Run: http://dagster.test:3000/runs/{run.run_id}" in text
    assert skip == f"posted 1 alert(s): outbound_sync_job (run {run.run_id})"


def test_a_second_tick_posts_nothing_new(write_settings, segment_standin, receiver):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance)
        sensor.tick()
        again = sensor.tick()
    assert len(receiver.attempts) == 1 and again == "posted 0 alert(s)"


def test_an_alert_never_shows_a_secret_or_the_webhook_url(
    write_settings, segment_standin, receiver
):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance, resources={"segment": LeakyVault(write_key=receiver.url)})
        sensor.tick()
    [text] = receiver.delivered
    assert "vault refused [REDACTED]" in text
    for secret in (WRITE_KEY, ANTAVO_KEY, ANTAVO_SECRET, TOKEN, "xoxwebhooktoken"):
        assert secret not in text


def test_a_webhook_answering_500_then_200_delivers_exactly_once(
    write_settings, segment_standin, receiver
):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance)
        receiver.answers = [500]
        first = sensor.tick()  # retried within the tick
        second = sensor.tick()
    assert first.startswith("posted 1 alert(s)") and second == "posted 0 alert(s)"
    assert len(receiver.attempts) == 2 and len(receiver.delivered) == 1


def test_a_webhook_down_for_a_whole_tick_keeps_the_alert_for_the_next_tick(
    write_settings, segment_standin, receiver
):
    path = _segment_down(write_settings, segment_standin, max_retries=1)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        run = _fail_outbound(defs, instance)
        receiver.answers = [500, 500]
        down = sensor.tick()
        assert receiver.delivered == []
        up = sensor.tick()
        sensor.tick()
    assert "not delivered (1 of" in down and "HTTP 500" in down and "xoxwebhooktoken" not in down
    assert up == f"posted 1 alert(s): outbound_sync_job (run {run.run_id})"
    assert len(receiver.delivered) == 1


def test_an_alert_the_webhook_keeps_refusing_is_given_up_after_a_bounded_number_of_ticks(
    write_settings, segment_standin, receiver
):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin, max_retries=0)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance)
        receiver.answers = [500] * MAX_FAILED_TICKS
        skips = [sensor.tick() for _ in range(MAX_FAILED_TICKS + 1)]
    assert skips[-2].startswith("posted 0 alert(s); gave up on the alert for outbound_sync_job")
    assert skips[-1] == "posted 0 alert(s)" and len(receiver.attempts) == MAX_FAILED_TICKS


def test_an_unset_webhook_variable_warns_without_crashing_and_the_alert_waits(
    write_settings, segment_standin, receiver, monkeypatch
):
    defs = build_definitions(str(_segment_down(write_settings, segment_standin)))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance)
        monkeypatch.delenv(WEBHOOK_ENV)
        unset = sensor.tick()
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        sensor.tick()
    assert f"environment variable {WEBHOOK_ENV} is not set" in unset
    assert len(receiver.delivered) == 1


def test_without_alert_settings_nothing_is_posted(write_settings, segment_standin, receiver):
    path = _segment_down(write_settings, segment_standin)
    path = write_settings(alerts={})  # the same settings, alerts not configured
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        _fail_outbound(defs, instance)
        skip = sensor.tick()
    assert receiver.attempts == [] and "alerts are off" in skip


def test_failures_from_while_alerts_were_off_are_not_posted_when_they_are_turned_on(
    write_settings, segment_standin, receiver
):
    path = _segment_down(write_settings, segment_standin, on=["check_failure"])
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        _fail_outbound(defs, instance)
        sensor.tick()
        sensor.defs = build_definitions(
            str(write_settings(alerts={**ALERTS, "on": ["run_failure"]}))
        )
        skip = sensor.tick()
    assert receiver.attempts == [] and skip == "posted 0 alert(s)"


def _failing_error_rate(path) -> None:
    """Outbound messages, most of them undelivered: the error-rate check fails."""
    stamp = datetime.now(UTC) - timedelta(minutes=5)
    rows = [
        {"timestamp": stamp, "message_id": f"m-{i}", "outcome": "failed" if i < 8 else "delivered"}
        for i in range(10)
    ]
    LogWriter(load_settings(path).logs.dir).write("outbound_messages", rows)


def test_a_failed_check_posts_one_alert_with_the_check_the_reason_and_the_link(
    write_settings, receiver
):
    path = write_settings(alerts=ALERTS)
    _failing_error_rate(path)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, CHECK_ALERT_SENSOR, instance)
        sensor.tick()
        run = defs.resolve_job_def("log_checks_job").execute_in_process(instance=instance)
        sensor.tick()
        again = sensor.tick()
    [text] = receiver.delivered
    assert text.startswith("[segment-sync] Check failed: outbound_log / outbound_error_rate\n")
    assert "Why: 8 of 10 message(s) not delivered (80.00%)" in text
    assert f"/runs/{run.run_id}" in text
    assert again == "posted 0 alert(s)"


def test_a_loyalty_feed_gone_silent_posts_a_check_alert(write_settings, receiver):
    path = write_settings(alerts=ALERTS)
    now = datetime.now(UTC)
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [
            NewEvent("c-1", "page_view", {}, occurred_at=now - timedelta(days=d, minutes=m + 1))
            for d in range(1, 8)
            for m in range(30)
        ]
    )  # a busy hour on each of the last 7 days (of events not sent), nothing in the last hour
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, CHECK_ALERT_SENSOR, instance)
        sensor.tick()
        defs.resolve_job_def("log_checks_job").execute_in_process(instance=instance)
        sensor.tick()
    [text] = receiver.delivered
    assert text.startswith("[segment-sync] Check failed: loyalty_events / loyalty_source_alive\n")
    assert "only 0 new loyalty event(s) in the last hour" in text


def test_a_check_that_raised_posts_an_alert_saying_it_could_not_be_evaluated(
    write_settings, receiver, monkeypatch
):
    defs = build_definitions(str(write_settings(alerts=ALERTS)))
    monkeypatch.delenv("SEGMENT_WRITE_KEY")  # oldest_undelivered_event needs it
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, CHECK_ALERT_SENSOR, instance)
        sensor.tick()
        run = defs.resolve_job_def("log_checks_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not run.success
        sensor.tick()
    [text] = receiver.delivered
    assert "Check failed: outbound_log / oldest_undelivered_event" in text
    assert "could not be evaluated" in text and "SEGMENT_WRITE_KEY is not set" in text
    assert f"/runs/{run.run_id}" in text


def test_a_failed_checks_run_is_not_a_sync_run_alert(write_settings, receiver, monkeypatch):
    defs = build_definitions(str(write_settings(alerts=ALERTS)))
    monkeypatch.delenv("SEGMENT_WRITE_KEY")
    with dg.instance_for_test() as instance:
        sensor = Sensor(defs, RUN_ALERT_SENSOR, instance)
        sensor.tick()
        defs.resolve_job_def("log_checks_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        skip = sensor.tick()
    assert receiver.attempts == [] and skip == "posted 0 alert(s)"


def test_both_alert_sensors_run_by_default(write_settings):
    defs = build_definitions(str(write_settings()))
    for name in (RUN_ALERT_SENSOR, CHECK_ALERT_SENSOR):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
