"""Inbound on a full or read-only log disk: sending stops within the requests in flight, and a rerun after the
disk is fixed registers each event once more at most for those requests. Real tmpfs, real
Antavo stand-in over loopback, the CLI."""

from __future__ import annotations

from collections import Counter

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.disks import break_disk
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders

ITEMS = 3000
MAX_IN_FLIGHT = 8  # the documented default: 8 requests x 50 events may be repeated
IN_FLIGHT_BOUND = MAX_IN_FLIGHT * 50


def run_inbound(path):
    return CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
def test_an_unwritable_log_stops_registering_and_the_rerun_repeats_only_the_requests_in_flight(
    write_settings, antavo_standin, small_tmpfs, tmp_path, fault, reason
):
    logs_dir = small_tmpfs / "logs"
    buffer_url = f"sqlite:///{tmp_path}/inbound.db"
    inbound = {
        "base_url": antavo_standin.url,
        "buffer_url": buffer_url,
        "mappings": [CHECKOUT],
        "chunk_size": 1000,
        "max_in_flight": MAX_IN_FLIGHT,
    }
    path = write_settings(inbound=inbound, logs={"dir": str(logs_dir)})
    buffer = InboundBuffer(buffer_url)
    buffer.add_many(orders(ITEMS))
    LogWriter(logs_dir)  # the layout exists; then the disk fills
    repair = break_disk(small_tmpfs, fault)

    failed = run_inbound(path)

    assert failed.exit_code == 1
    assert f"logs.dir ({logs_dir})" in failed.output and reason in failed.output
    assert "Traceback" not in failed.output
    registered_first = len(antavo_standin.events)
    assert 0 < registered_first <= IN_FLIGHT_BOUND  # today: the whole chunk of 1,000
    assert f"{registered_first} event(s) Antavo registered could not be logged" in failed.output
    assert buffer.counts() == {
        "pending": ITEMS,
        "done": 0,
        "failed": 0,
        "unknown": 0,
    }  # nothing unlogged done

    repair()
    rerun = run_inbound(path)

    assert rerun.exit_code == 0, rerun.output
    registered = Counter(e["data"]["mid"] for e in antavo_standin.events)
    assert set(registered) == {f"o-{i}" for i in range(ITEMS)}  # retried, none lost
    twice = [mid for mid, n in registered.items() if n > 1]
    assert max(registered.values()) == 2 and len(twice) == registered_first <= IN_FLIGHT_BOUND
    assert buffer.counts() == {"pending": 0, "done": ITEMS, "failed": 0, "unknown": 0}
    with connect(logs_dir) as con:
        (logged,) = con.execute(
            "SELECT count(DISTINCT message_id) FROM inbound_items WHERE outcome = 'done'"
        ).fetchone()
    assert logged == ITEMS
