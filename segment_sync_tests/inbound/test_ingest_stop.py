"""SIGINT `segment-sync run inbound` while a request waits to be retried: every request Antavo
answered keeps its inbound_log rows (the manual's log shows each request, also a stopped run's)."""

from __future__ import annotations

import signal
import time

import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect
from segment_sync.settings import load_settings
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders
from segment_sync_tests.inbound.test_ingest_kill import start_run

SETTLE_S = 3.0  # the run takes Antavo's answer in; its retry then waits 60 s, the stop comes first


@pytest.mark.slow
def test_a_stop_while_a_request_waits_to_be_retried_keeps_the_rows_of_its_answered_attempt(
    write_settings, antavo_standin, tmp_path
):
    buffer_url = f"sqlite:///{tmp_path}/inbound.db"
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": buffer_url, "mappings": [CHECKOUT]}
    )
    InboundBuffer(buffer_url).add_many(orders(3))
    antavo_standin.configure(fail_next=[429], retry_after_s=60)

    run = start_run(path)
    deadline = time.monotonic() + 60
    while antavo_standin.stats()["requests_by_status"].get("429", 0) < 1:
        assert run.poll() is None, run.stdout.read()
        assert time.monotonic() < deadline, "Antavo was not asked within 60 s"
        time.sleep(0.05)
    time.sleep(SETTLE_S)
    assert run.poll() is None, run.stdout.read()  # still waiting out the Retry-After
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=60)[0]

    with connect(load_settings(path).logs.dir) as con:
        rows = con.execute(
            "SELECT request_status_code, count(*) FROM inbound_log GROUP BY 1"
        ).fetchall()
    assert rows == [(429, 3)], output  # one row per event of the answered request
    assert antavo_standin.events == []  # nothing registered: the retry never went
