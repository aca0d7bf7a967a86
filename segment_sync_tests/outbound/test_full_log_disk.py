"""Outbound logs and state agree when the log disk fills: unlogged is never counted as done."""

from __future__ import annotations

from collections import Counter

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
from segment_sync_tests.disks import break_disk, fill_disk

EVENTS = 3000
CHUNK = 200  # the in-flight test's chunk: 5 requests of 10 KB messages


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


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
def test_an_unwritable_log_stops_sending_within_the_requests_in_flight(
    write_settings, segment_standin, roomy_tmpfs, fault, reason
):
    """The first chunk's log write fails while the second chunk is being sent: that chunk stops
    at the requests already in flight (max_in_flight 2) instead of going out whole."""
    logs_dir = roomy_tmpfs / "logs"
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": CHUNK, "max_in_flight": 2},
        logs={"dir": str(logs_dir)},
    )
    settings = load_settings(path)
    pad = "x" * 10_000  # about 48 messages per request: a chunk is 5 requests
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i, "pad": pad}) for i in range(3 * CHUNK)]
    )
    LogWriter(logs_dir)
    repair = break_disk(roomy_tmpfs, fault)
    segment_standin.set_faults(delay_s=1.0)  # a chunk takes 3 s; the failed write far less

    failed = CliRunner().invoke(
        main, ["run", "outbound", "--stream", "events", "--settings", str(path)]
    )

    assert failed.exit_code == 1 and reason in failed.output, failed.output
    per_request = max(r["messages"] for r in segment_standin.requests)
    second_chunk = [i for i in segment_standin.accepted_message_ids() if source_id(i) > CHUNK]
    assert len(second_chunk) <= 2 * per_request  # max_in_flight requests; today all 200

    repair()
    segment_standin.set_faults(delay_s=0)
    rerun = CliRunner().invoke(
        main, ["run", "outbound", "--stream", "events", "--settings", str(path)]
    )
    assert rerun.exit_code == 0, rerun.output
    accepted = Counter(source_id(i) for i in segment_standin.accepted_message_ids())
    assert set(accepted) == set(range(1, 3 * CHUNK + 1))  # none lost
    resent = [s for s, n in accepted.items() if n > 1]  # same messageIds: Segment deduplicates
    assert max(accepted.values()) == 2 and len(resent) <= CHUNK + 2 * per_request


def source_id(message_id: str) -> int:
    """The loyalty row id inside a messageId (`ss-evt-<id>-<hash>`)."""
    return int(message_id.split("-")[2])


def test_a_replay_stops_at_the_first_chunk_it_cannot_log(
    write_settings, segment_standin, small_tmpfs
):
    logs_dir = small_tmpfs / "logs"
    outbound = {"base_url": segment_standin.url, "max_retries": 0, "chunk_size": 1000}
    path = write_settings(outbound=outbound, logs={"dir": str(logs_dir)})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 50}", "point_add", {"points": i}) for i in range(3 * CHUNK)]
    )
    segment_standin.set_faults(error_rate=1.0)
    outage = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert outage.exit_code == 1 and "stays pending" in outage.output  # 600 pending messages
    segment_standin.set_faults(error_rate=0.0)
    write_settings(outbound={**outbound, "chunk_size": CHUNK}, logs={"dir": str(logs_dir)})
    repair = break_disk(small_tmpfs, "full")

    failed = CliRunner().invoke(main, ["replay", "outbound", "--settings", str(path)])

    assert failed.exit_code == 1 and "No space left on device" in failed.output, failed.output
    assert len(segment_standin.accepted_message_ids()) == CHUNK  # today: all 600, none logged

    repair()
    replayed = CliRunner().invoke(main, ["replay", "outbound", "--settings", str(path)])
    assert replayed.exit_code == 0, replayed.output
    accepted = Counter(source_id(i) for i in segment_standin.accepted_message_ids())
    assert set(accepted) == set(range(1, 3 * CHUNK + 1))
    assert sorted(accepted.values()) == [1] * 2 * CHUNK + [2] * CHUNK
