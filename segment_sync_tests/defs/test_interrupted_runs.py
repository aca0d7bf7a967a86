"""A Dagster outbound run stopped mid-run (SIGTERM to `dagster job execute`, or its step process
killed: a lost worker) gets a `sync_runs` row that agrees with its own outbound log rows.
Real `dagster job execute` processes, real signals, a slowed Segment stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psutil
import pytest

from segment_sync.definitions import build_definitions
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.cli.test_interrupted_runs import EVENTS, run_row_and_log, wait_for
from segment_sync_tests.defs.test_run_results import evaluate_for_run


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")  # SQLite storage under the home
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def start_outbound_run(write_settings, segment_standin) -> tuple[subprocess.Popen, str]:
    """`dagster job execute` of the outbound job over EVENTS events, 100 per 0.3 s request."""
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i}) for i in range(EVENTS)]
    )
    segment_standin.set_faults(delay_s=0.3)
    job = ["-m", "segment_sync.definitions", "-j", "outbound_sync_job"]
    run = subprocess.Popen(
        [sys.executable, "-m", "dagster", "job", "execute", *job],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: len(segment_standin.accepted_message_ids()) >= 500, timeout_s=120)
    return run, str(path)


def test_a_terminated_dagster_run_records_the_messages_it_delivered(
    write_settings, segment_standin, dagster_home
):
    run, path = start_outbound_run(write_settings, segment_standin)

    run.send_signal(signal.SIGTERM)  # Dagster interrupts the step: a deploy, Ctrl-C
    output, _ = run.communicate(timeout=120)

    assert "DagsterExecutionInterruptedError" in output  # the step really was interrupted
    accepted = len(segment_standin.accepted_message_ids())
    assert accepted < EVENTS, output
    (_, status, sent, failed, requests, sent_bytes, error), logged = run_row_and_log(
        load_settings(path).logs.dir
    )
    assert status == "failure" and "interrupted by a stop of its Dagster run" in error
    assert (sent, failed, requests, sent_bytes) == logged  # today: messages_sent 0
    assert 0 < sent <= accepted


def test_a_lost_worker_gets_a_sync_runs_row_with_what_its_log_shows_delivered(
    write_settings, segment_standin, dagster_home
):
    run, path = start_outbound_run(write_settings, segment_standin)

    # SIGKILL the run worker (the outbound step runs in it): nothing in it runs again, its row
    # is never written, and nobody is left to end the run.
    psutil.Process(run.pid).kill()
    run.communicate(timeout=120)

    with dg.DagsterInstance.get() as instance:
        [lost] = instance.get_runs()
        assert lost.status == dg.DagsterRunStatus.STARTED
        instance.report_run_failed(lost)  # as run monitoring does when a run worker is gone
        failed_run = instance.get_run_by_id(lost.run_id)
        assert failed_run.status == dg.DagsterRunStatus.FAILURE
        evaluate_for_run(build_definitions(path), instance, failed_run)
    (run_id, status, sent, failed, requests, sent_bytes, _), logged = run_row_and_log(
        load_settings(path).logs.dir
    )
    assert run_id == failed_run.run_id and status == "failure"
    assert (sent, failed, requests, sent_bytes) == logged  # today: messages_sent 0
    assert 0 < sent <= len(segment_standin.accepted_message_ids())
