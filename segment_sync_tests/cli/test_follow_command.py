"""`segment-sync run outbound --follow`: a real process that sends as rows commit, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.syncs import outbound_sync

PATIENCE_S = 60


def test_the_follow_command_sends_new_rows_and_stops_cleanly_on_ctrl_c(
    write_settings, segment_standin
):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "follow_s": 600, "poll_interval_ms": 50}
    )
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-0", "point_add", {"points": 0})])
    command = [sys.executable, "-m", "segment_sync.cli", "run", "outbound", "--follow"]
    process = subprocess.Popen(
        [*command, "--settings", str(path), "--stream", "events"],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + PATIENCE_S
        [late] = store.append_events([NewEvent("c-1", "purchase", {"total": 5})])
        while len(segment_standin.messages) < 2:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the row committed while following never arrived"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=PATIENCE_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopping after the current pass" in output
    assert f"id {late}" in output  # the summary: delivered up to the late row
    assert outbound_sync(path).state.watermark(Stream.EVENTS) == late
