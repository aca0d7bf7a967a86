"""SIGKILL `segment-sync run inbound` mid-run, rerun at once: nothing lost, nothing stranded, and
Antavo sees at most the requests that were in flight again (its Events API has no idempotency key).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders

ITEMS = 3000
MAX_IN_FLIGHT = 4
LEASE_S = 3.0


def start_run(settings_path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segment_sync.cli",
            "run",
            "inbound",
            "--settings",
            str(settings_path),
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_loses_nothing_strands_nothing_and_bounds_duplicates(
    write_settings, antavo_standin, tmp_path
):
    buffer_url = f"sqlite:///{tmp_path}/inbound.db"
    path = write_settings(
        inbound={
            "base_url": antavo_standin.url,
            "buffer_url": buffer_url,
            "mappings": [CHECKOUT],
            "rate_limit_per_minute": 900,  # 60 requests of 50 take about 4 s
            "max_in_flight": MAX_IN_FLIGHT,
            "lease_s": LEASE_S,
        }
    )
    buffer = InboundBuffer(buffer_url)
    buffer.add_many(orders(ITEMS))

    first = start_run(path)
    deadline = time.monotonic() + 60
    while len(antavo_standin.events) < 800:  # well into the first 1000-item chunk
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "the run registered nothing within 60 s"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = buffer.counts()
    claimed_by_dead = sum(1 for r in buffer.items("pending", ITEMS) if r.claimed_by)

    outputs = []
    deadline = time.monotonic() + 120
    while buffer.pending_count():
        assert time.monotonic() < deadline, f"still pending after 120 s: {buffer.counts()}"
        rerun = start_run(path)
        outputs.append(rerun.communicate(timeout=120)[0])

    mids = Counter(e["data"]["mid"] for e in antavo_standin.events)
    duplicates = sum(mids.values()) - len(mids)
    print(
        f"\nSIGKILL at {at_kill}, {claimed_by_dead} claimed by the dead run; reruns {len(outputs)}; Antavo registrations "
        f"{sum(mids.values())} for {ITEMS} items: {duplicates} duplicate(s) "
        f"(bound {MAX_IN_FLIGHT} x 50 = {MAX_IN_FLIGHT * 50})\n" + "".join(outputs)
    )
    assert 0 < at_kill["pending"] < ITEMS  # killed mid-run, with work done and work left
    assert claimed_by_dead > 0  # the dead run held items the rerun had to take over
    assert set(mids) == {f"o-{i}" for i in range(ITEMS)}  # 0 lost
    records = buffer.items(limit=ITEMS + 1)
    assert {r.status for r in records} == {"done"} and len(records) == ITEMS
    assert duplicates <= MAX_IN_FLIGHT * 50
    assert len(outputs) == 1  # the immediate rerun took the dead run's items over itself
