"""A `segment-sync run` process stopped by a real signal mid-run records what it delivered: its
`sync_runs` row agrees with its own log rows. Real processes, slowed stand-ins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders

EVENTS = 3000


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, timeout_s: float = 60.0) -> None:
    """Poll `condition` until it holds; the deadline is only a safety net."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run_row_and_log(logs_dir) -> tuple[tuple, tuple]:
    """The one sync_runs row, and what the outbound log holds for its run."""
    with connect(logs_dir) as con:
        [row] = con.execute(
            "SELECT run_id, status, messages_sent, messages_failed, requests, bytes, error "
            "FROM sync_runs"
        ).fetchall()
        logged = con.execute(
            "SELECT (SELECT count(*) FROM outbound_messages WHERE run_id = $1 "
            "        AND outcome = 'delivered'), "
            "       (SELECT count(*) FROM outbound_messages WHERE run_id = $1 "
            "        AND outcome = 'failed'), "
            "       (SELECT count(*) FROM outbound_log WHERE run_id = $1), "
            "       (SELECT coalesce(sum(request_bytes), 0) FROM outbound_log WHERE run_id = $1)",
            [row[0]],
        ).fetchone()
    return row, logged


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_outbound_run_records_the_messages_it_delivered(
    write_settings, segment_standin, signum
):
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i}) for i in range(EVENTS)]
    )
    segment_standin.set_faults(delay_s=0.3)  # one request of 100 per 0.3 s: about 9 s in all

    run = start("run", "outbound", "--stream", "events", "--settings", str(path))
    wait_for(lambda: len(segment_standin.accepted_message_ids()) >= 500)
    run.send_signal(signum)
    output, _ = run.communicate(timeout=120)

    assert run.returncode != 0, output
    assert "Traceback" not in output
    accepted = len(segment_standin.accepted_message_ids())
    assert accepted < EVENTS  # it stopped mid-run
    (run_id, status, sent, failed, requests, sent_bytes, error), logged = run_row_and_log(
        settings.logs.dir
    )
    assert status == "failure" and "interrupted" in error, error
    assert (sent, failed, requests, sent_bytes) == logged  # today: 0 sent (SIGINT), no row (TERM)
    # The answer of a request in flight at the signal may never be read: not logged, not counted.
    assert 0 < sent <= accepted
    assert f"run {run_id} FAILED" in output and "interrupted" in output

    segment_standin.set_faults(delay_s=0)
    rerun = start("run", "outbound", "--stream", "events", "--settings", str(path))
    rerun_output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, rerun_output  # what the interrupted run did not log, it sends
    accepted_ids = {int(m.split("-")[2]) for m in segment_standin.accepted_message_ids()}
    assert accepted_ids == set(range(1, EVENTS + 1))


def test_a_signalled_inbound_run_records_the_events_it_registered(
    write_settings, antavo_standin, tmp_path
):
    buffer_url = f"sqlite:///{tmp_path}/inbound.db"
    inbound = {
        "base_url": antavo_standin.url,
        "buffer_url": buffer_url,
        "mappings": [CHECKOUT],
        "rate_limit_per_minute": 600,  # 60 requests of 50 take about 6 s
    }
    path = write_settings(inbound=inbound)
    InboundBuffer(buffer_url).add_many(orders(EVENTS))

    run = start("run", "inbound", "--settings", str(path))
    wait_for(lambda: len(antavo_standin.events) >= 500)
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=120)

    assert run.returncode != 0 and "Traceback" not in output, output
    assert "interrupted by SIGTERM" in output
    with connect(load_settings(path).logs.dir) as con:
        [(run_id, status, sent, requests)] = con.execute(
            "SELECT run_id, status, messages_sent, requests FROM sync_runs"
        ).fetchall()
        logged = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'success'), count(DISTINCT identifier) "
            "FROM inbound_log WHERE run_id = ? AND identifier IS NOT NULL",
            [run_id],
        ).fetchone()
    assert status == "failure" and (sent, requests) == logged  # today: no row at all
    assert 0 < sent <= len(antavo_standin.events) < EVENTS
