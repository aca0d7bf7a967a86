"""A second Ctrl-C while a stopped `segment-sync run` writes its record: the run is still
recorded (its sync_runs row, status failure, the counts its log shows) and says so in one line.
Real processes, real SIGINT to the process group, the real Segment stand-in.

How the process is caught inside its record-keeping, without timing: once the run is sending,
the first table's `_schema.parquet` is swapped for a FIFO. Counting a stopped run from its log
makes sure of the log layout first, which reads that file: pyarrow's open then waits for a
writer (/proc/<pid>/wchan = wait_for_partner), DuckDB's glob never lists a FIFO. The second
Ctrl-C goes then; the test opens the FIFO so the read fails, and the layout rewrites the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from segment_sync.logs.layout import SCHEMA_FILE_NAME, SCHEMA_PARTITION, table_dir
from segment_sync.logs.schema import TABLES
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.cli.test_interrupted_runs import run_row_and_log, wait_for
from segment_sync_tests.cli.test_interrupted_scans import release, wait_in_scan

EVENTS = 3000


def test_a_second_ctrl_c_while_a_stopped_run_counts_itself_still_records_the_run(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i}) for i in range(EVENTS)]
    )
    segment_standin.set_faults(delay_s=0.3)  # one request of 100 per 0.3 s: about 9 s in all
    run = subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", "run", "outbound", "--stream", "events",
         "--settings", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    wait_for(lambda: len(segment_standin.accepted_message_ids()) >= 500)
    schema_file = table_dir(settings.logs.dir, next(iter(TABLES))) / SCHEMA_PARTITION
    schema_file = schema_file / SCHEMA_FILE_NAME
    schema_file.unlink()
    os.mkfifo(schema_file)

    os.killpg(run.pid, signal.SIGINT)  # the first Ctrl-C: stop, write what was done
    wait_in_scan(run, schema_file)  # counting itself from its log
    os.killpg(run.pid, signal.SIGINT)  # the second
    release(schema_file)
    output, _ = run.communicate(timeout=120)

    assert run.returncode != 0 and "Traceback" not in output, output
    (run_id, status, sent, failed, requests, sent_bytes, error), logged = run_row_and_log(
        settings.logs.dir
    )  # today: no sync_runs row at all
    assert status == "failure" and "interrupted by SIGINT" in error, error
    assert (sent, failed, requests, sent_bytes) == logged
    assert 0 < sent <= len(segment_standin.accepted_message_ids())
    assert f"run {run_id} FAILED: interrupted by SIGINT" in output, output
