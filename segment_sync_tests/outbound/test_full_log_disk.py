"""Outbound logs and state agree when the log disk fills: unlogged is never counted as done."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.disks import fill_disk

EVENTS = 3000


def store_with_logs_on(disk, write_settings, segment_standin):
    """Settings with logs.dir on `disk`, and EVENTS allow-listed events in 1,000-row chunks."""
    logs_dir = disk / "logs"
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": 1000},
        logs={"dir": str(logs_dir)},
    )
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i}) for i in range(EVENTS)]
    )
    return path, settings, logs_dir


def test_a_full_log_disk_fails_the_run_keeps_the_watermark_and_a_rerun_converges(
    write_settings, segment_standin, small_tmpfs
):
    path, settings, logs_dir = store_with_logs_on(small_tmpfs, write_settings, segment_standin)
    LogWriter(logs_dir)  # the layout exists; then the disk fills
    filler = fill_disk(small_tmpfs)

    failed = CliRunner().invoke(
        main, ["run", "outbound", "--stream", "events", "--settings", str(path)]
    )
    assert failed.exit_code == 1
    assert f"logs.dir ({logs_dir})" in failed.output and "No space left on device" in failed.output
    assert "Traceback" not in failed.output
    state = factory.outbound_state(settings, WRITE_KEY)
    assert state.watermark(Stream.EVENTS) == 0  # nothing was logged, so nothing counts as done
    reached_segment = set(segment_standin.accepted_message_ids())
    assert reached_segment  # the first chunk was delivered before its log write failed

    filler.unlink()
    rerun = CliRunner().invoke(
        main, ["run", "outbound", "--stream", "events", "--settings", str(path)]
    )
    assert rerun.exit_code == 0, rerun.output
    assert state.watermark(Stream.EVENTS) == EVENTS
    with connect(logs_dir) as con:
        delivered = {
            m
            for (m,) in con.execute(
                "SELECT message_id FROM outbound_messages WHERE outcome = 'delivered'"
            ).fetchall()
        }
        runs = con.execute("SELECT status, messages_sent FROM sync_runs").fetchall()
    # Every message Segment accepted is logged as delivered, and the run's count agrees.
    assert reached_segment <= delivered and len(delivered) == EVENTS
    assert set(segment_standin.accepted_message_ids()) == delivered
    assert ("success", EVENTS) in runs


def test_a_disk_that_fills_mid_run_fails_it_with_counts_that_match_the_log(
    write_settings, segment_standin, small_tmpfs
):
    path, settings, logs_dir = store_with_logs_on(small_tmpfs, write_settings, segment_standin)
    fillers = []

    def fill_after_first_chunk(result) -> None:
        if not fillers:
            fillers.append(fill_disk(small_tmpfs))

    sync = factory.outbound_sync(
        settings, WRITE_KEY, LogWriter(logs_dir), on_chunk=fill_after_first_chunk
    )
    with pytest.raises(OutboundFailed) as raised:
        sync.run(Stream.EVENTS, "run-disk-fills")
    result = raised.value.result
    assert f"logs.dir ({logs_dir})" in result.error
    fillers[0].unlink()
    with connect(logs_dir) as con:
        (logged,) = con.execute(
            "SELECT count(*) FROM outbound_messages WHERE outcome = 'delivered'"
        ).fetchone()
    assert logged == 1000 and result.counts.sent == logged  # the unlogged chunk is not counted
    assert result.watermark_after == 1000
    assert factory.outbound_state(settings, WRITE_KEY).watermark(Stream.EVENTS) == 1000
