"""Outbound acceptance: regions, faults, outages, kills and secrets, over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from segment_sync import factory
from segment_sync.logs.views import connect
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.build import build_messages
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync.standins.segment import SegmentStandin
from segment_sync.standins.server import free_port, serve_in_thread
from segment_sync_tests.conftest import EU_WRITE_KEY, WRITE_KEY
from segment_sync_tests.outbound.syncs import outbound_sync


def expected_ids(settings) -> list[str]:
    store = LoyaltyStore(settings.loyalty_store.url)
    messages, _, _ = build_messages(store.events_after(0, 10**12, 10**7), settings, Stream.EVENTS)
    return sorted(m.message_id for m in messages)


def test_a_us_key_sent_to_eu_is_answered_200_and_lost_until_the_region_is_fixed(
    write_settings, segment_standin
):
    """What a user of real Segment sees: the run succeeds, yet the eu workspace gets nothing
    (only the stand-in's own debug count shows the drop). Fixing outbound.region changes the
    destination, whose progress starts from the first row: everything is delivered then."""
    eu = SegmentStandin("eu", {WRITE_KEY: "us", EU_WRITE_KEY: "eu"})
    with serve_in_thread(eu.app) as eu_url:
        wrong = write_settings(outbound={"region": "eu", "base_url": eu_url})
        seed(LoyaltyStore(load_settings(wrong).loyalty_store.url), 300, 0, 20)
        assert outbound_sync(wrong).run(Stream.EVENTS, "run-wrong-region").ok
    settings = load_settings(wrong)
    assert eu.accepted_message_ids() == [] and eu.messages == []
    assert eu.dropped()["messages_by_reason"]["wrong_region"] == len(expected_ids(settings))
    statuses = connect(settings.logs.dir).execute("SELECT DISTINCT status_code FROM outbound_log")
    assert statuses.fetchall() == [(200,)]

    fixed = write_settings(outbound={"region": "us", "base_url": segment_standin.url})
    result = outbound_sync(fixed).run(Stream.EVENTS, "run-fixed")
    assert result.ok
    assert sorted(segment_standin.accepted_message_ids()) == expected_ids(settings)


def test_every_message_arrives_despite_5xx_and_429(write_settings, segment_standin):
    segment_standin.set_faults(error_rate=0.2, throttle_rate=0.1, retry_after_s=0.01)
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": 100, "max_retries": 12}
    )
    seed(LoyaltyStore(load_settings(path).loyalty_store.url), 2000, 0, 50)
    result = outbound_sync(path).run(Stream.EVENTS, "run-faults")
    statuses = {r["status"] for r in segment_standin.requests}
    assert {429, 200} <= statuses and statuses & {500, 502, 503}
    received = segment_standin.accepted_message_ids()
    assert sorted(set(received)) == expected_ids(load_settings(path))
    assert len(received) == len(set(received))  # a faulted request stored nothing: no repeats
    assert result.counts.sent == len(received) and result.counts.retries > 0


def test_outage_longer_than_retry_budget_fails_visibly_and_a_later_run_delivers(
    write_settings, segment_standin
):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "max_retries": 2, "chunk_size": 500}
    )
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 1500, 0, 30)
    segment_standin.set_faults(outage_requests=10_000)
    with pytest.raises(OutboundFailed) as failed:
        outbound_sync(path).run(Stream.EVENTS, "run-outage")
    assert "HTTP 503" in str(failed.value) and failed.value.result.counts.pending > 0
    assert factory.outbound_state(settings, WRITE_KEY).watermark(Stream.EVENTS) == 0
    segment_standin.set_faults(outage_requests=0)
    assert outbound_sync(path).run(Stream.EVENTS, "run-after-outage").ok
    assert sorted(set(segment_standin.accepted_message_ids())) == expected_ids(settings)
    pending = (
        connect(settings.logs.dir)
        .execute(
            "SELECT count(DISTINCT message_id) FROM outbound_messages WHERE outcome = 'pending' AND run_id = 'run-outage'"
        )
        .fetchone()[0]
    )
    assert pending == failed.value.result.counts.pending


def _standin_process(port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "SEGMENT_WRITE_KEY": WRITE_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segment_sync.standins.segment", "--port", str(port), "--region", "us",
         "--write-key-env", "SEGMENT_WRITE_KEY=us", *extra],
        env=env,
    )  # fmt: skip
    import httpx

    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("stand-in did not start")


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_run_killed_mid_send_loses_nothing(write_settings):
    import httpx

    port = free_port()
    standin = _standin_process(port, "--delay", "0.05")
    try:
        path = write_settings(
            outbound={"base_url": f"http://127.0.0.1:{port}", "chunk_size": 100, "max_in_flight": 1}
        )
        settings = load_settings(path)
        seed(LoyaltyStore(settings.loyalty_store.url), 4000, 0, 50)
        victim = _cli("run", "outbound", "--stream", "events")
        deadline = time.monotonic() + 60
        while (
            httpx.get(f"http://127.0.0.1:{port}/_standin/stats").json()["messages_accepted"] < 300
        ):
            assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read()
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        got_before = len(set(httpx.get(f"http://127.0.0.1:{port}/_standin/message_ids").json()))
        assert 0 < got_before < len(expected_ids(settings))

        rerun = _cli("run", "outbound", "--stream", "events")
        out, _ = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, out
        ids = httpx.get(f"http://127.0.0.1:{port}/_standin/message_ids").json()
        assert sorted(set(ids)) == expected_ids(settings)
    finally:
        standin.kill()
        standin.wait()


def test_write_key_appears_in_no_log_row_error_or_stdout(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 1})
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 200, 50, 10)
    ok = _cli("run", "outbound")
    out_ok, _ = ok.communicate(timeout=120)
    segment_standin.set_faults(outage_requests=100)
    failing = _cli("run", "outbound")
    seed(LoyaltyStore(settings.loyalty_store.url), 20, 0, 2)
    out_fail, _ = failing.communicate(timeout=120)
    assert ok.returncode == 0 and failing.returncode == 1, out_ok + out_fail
    with pytest.raises(OutboundFailed) as failed:
        outbound_sync(path).run(Stream.EVENTS, "run-secret")
    db = connect(settings.logs.dir)
    dumped = "".join(
        str(db.execute(f"SELECT * FROM {table}").fetchall())
        for table in ("outbound_log", "outbound_messages", "sync_runs")
    )
    assert "HTTP 503" in dumped and "delivered" in dumped  # the dump holds real rows
    for text in (dumped, out_ok, out_fail, str(failed.value), repr(failed.value.result)):
        assert WRITE_KEY not in text
    assert "Basic " not in dumped


def test_a_write_key_inside_event_data_is_logged_as_redacted(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent("c-1", "purchase", {"note": f"pasted by mistake: {WRITE_KEY}"})]
    )
    assert outbound_sync(path).run(Stream.EVENTS, "run-redact").counts.sent == 1
    (body,) = connect(settings.logs.dir).execute("SELECT request_body FROM outbound_log").fetchone()
    assert "pasted by mistake: [REDACTED]" in body
    assert WRITE_KEY not in body


def test_state_and_store_work_on_postgresql(pg_url, write_settings, segment_standin):
    path = write_settings(
        loyalty_store={"url": pg_url},
        outbound={"base_url": segment_standin.url, "state_url": pg_url},
    )
    settings = load_settings(path)
    seed(LoyaltyStore(pg_url), 700, 100, 20)
    state = factory.outbound_state(settings, WRITE_KEY)
    with state.lock(Stream.EVENTS):
        other = factory.outbound_state(settings, WRITE_KEY)
        with (
            pytest.raises(RuntimeError, match="another run"),
            other.lock(Stream.EVENTS, wait_s=0.3),
        ):
            pass
        other.close()
    result = outbound_sync(path).run(Stream.EVENTS, "run-pg")
    assert result.ok and state.watermark(Stream.EVENTS) == 700
    assert sorted(segment_standin.accepted_message_ids()) == expected_ids(settings)
    state.close()


@pytest.mark.parametrize("state", ["sqlite", "postgresql"])
def test_two_runs_never_send_the_same_stream_at_once(
    state, request, write_settings, segment_standin
):
    outbound = {"base_url": segment_standin.url}
    if state == "postgresql":
        outbound["state_url"] = request.getfixturevalue("pg_url")
    path = write_settings(outbound=outbound)
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 8_000, 2_000, 50)
    runs = [_cli("run", "outbound"), _cli("run", "outbound")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, outputs
    for code, output in zip(codes, outputs, strict=True):
        assert code == 0 or "another run" in output, output  # a refusal says why
    stats = segment_standin.stats()
    assert stats["duplicate_message_ids"] == 0
    assert sorted(set(segment_standin.accepted_message_ids())) == sorted(
        segment_standin.accepted_message_ids()
    )
    assert set(expected_ids(settings)) <= set(segment_standin.accepted_message_ids())
    state_after = factory.outbound_state(settings, WRITE_KEY)
    assert state_after.watermark(Stream.EVENTS) == 8_000
    state_after.close()


def test_a_held_stream_lock_refuses_a_second_run_but_not_another_stream(write_settings):
    path = write_settings()
    state = factory.outbound_state(load_settings(path), WRITE_KEY)
    with state.lock(Stream.EVENTS):
        with (
            pytest.raises(RuntimeError, match="another run"),
            state.lock(Stream.EVENTS, wait_s=0.2),
        ):
            pass
        with state.lock(Stream.PROFILES, wait_s=0.2):
            pass  # another stream is free
