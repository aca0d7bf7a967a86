"""A bad row stays one failed row when it is replayed, resynced, reconciled or dry-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import loyalty_events
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.sync import OutboundSync
from segment_sync_tests.outbound.raw_rows import insert_raw, stored_time
from segment_sync_tests.outbound.syncs import outbound_sync

DAY = timedelta(hours=24)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def late_unreadable_time() -> str:
    """A time that sorts (as text) within the last hour but does not read as a time."""
    return stored_time(datetime.now(UTC) - timedelta(minutes=5)) + "X"


# A stored row that cannot become a message (a value to call is made when the test runs), and
# what its reason says.
BAD_ROWS = {
    "not-json": ({"data": '{"points": 1,'}, "column data is not valid JSON"),
    "not-utf8": ({"data": b'{"points": "\xff"}'}, "column data is not valid UTF-8"),
    "not-an-object": (
        {"data": "[1, 2]"},
        "column data cannot be read (is JSON list, not an object)",
    ),
    "not-a-time": ({"occurred_at": late_unreadable_time}, "column occurred_at cannot be read"),
    "too-deep": ({"data": '{"a":' + "[" * 300 + "]" * 300 + "}"}, "nested more than 254 levels"),
    "no-customer-id": ({"customer_id": ""}, "has no customer_id, which customer_id_mapping uses"),
}


@pytest.fixture(params=sorted(BAD_ROWS))
def store_with_a_bad_row(request, write_settings, segment_standin):
    """20 good events, one bad row, 20 good: (settings path, sync, good ids, bad id, problem)."""
    columns, problem = BAD_ROWS[request.param]
    columns = {name: value() if callable(value) else value for name, value in columns.items()}
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    sync = outbound_sync(path)
    good = good_events(sync, 20)
    bad = insert_raw(sync.store, loyalty_events, **columns)
    good += good_events(sync, 20)
    return str(path), sync, good, bad, problem


def good_events(sync: OutboundSync, n: int) -> list[int]:
    return sync.store.append_events([NewEvent(f"c-{i}", "point_add", {"n": i}) for i in range(n)])


def accepted_ids(standin) -> list[int]:
    return sorted(int(m["messageId"].split("-")[2]) for m in standin.messages)


def failed_in_run(sync: OutboundSync, run_id: str | None = None) -> dict[int, str]:
    """The failed rows of a run (by default the latest): source id -> reason."""
    with connect(sync.settings.logs.dir) as con:
        if run_id is None:
            (run_id,) = con.execute(
                'SELECT run_id FROM outbound_messages ORDER BY "timestamp" DESC LIMIT 1'
            ).fetchone()
        rows = con.execute(
            "SELECT source_id, error FROM outbound_messages "
            "WHERE outcome = 'failed' AND run_id = ?",
            [run_id],
        ).fetchall()
    return dict(rows)


def assert_named(failed: dict[int, str], bad: int, problem: str) -> None:
    assert list(failed) == [bad]
    assert failed[bad].startswith(f"loyalty_events id {bad}: ") and problem in failed[bad]


def test_replay_sends_the_good_rows_and_fails_the_row_still_bad(
    store_with_a_bad_row, segment_standin
):
    path, sync, good, bad, problem = store_with_a_bad_row
    segment_standin.set_faults(outage_requests=1000)
    assert invoke("run", "outbound", "--stream", "events", "--settings", path).exit_code == 1
    assert segment_standin.messages == []
    segment_standin.set_faults(outage_requests=0)

    replayed = invoke("replay", "outbound", "--stream", "events", "--settings", path)
    assert replayed.exit_code == 1  # the bad row failed again
    assert "replay events: found 41 row(s); sent 40, failed 1" in replayed.output
    assert "Traceback" not in replayed.output
    assert accepted_ids(segment_standin) == good
    assert_named(failed_in_run(sync), bad, problem)


def test_resync_sends_the_good_rows_and_fails_the_bad_one(store_with_a_bad_row, segment_standin):
    path, sync, good, bad, problem = store_with_a_bad_row
    invoke("run", "outbound", "--stream", "events", "--settings", path)
    segment_standin.reset()
    resynced = invoke(
        "resync", "outbound", "--since", "1h", "--stream", "events", "--settings", path
    )
    assert "resync events: found 41 row(s); sent 40, failed 1" in resynced.output
    assert accepted_ids(segment_standin) == good
    assert_named(failed_in_run(sync), bad, problem)


def test_a_dry_run_counts_the_bad_row_as_would_fail(store_with_a_bad_row, segment_standin):
    path = store_with_a_bad_row[0]
    result = invoke("run", "outbound", "--stream", "events", "--dry-run", "--settings", path)
    assert result.exit_code == 0, result.output
    assert "would send 40 message(s)" in result.output and "would fail 1" in result.output
    assert segment_standin.requests == []


def test_reconciliation_logs_bad_rows_committed_behind_the_watermark_as_failed_once(
    write_settings, segment_standin
):
    sync = outbound_sync(write_settings(outbound={"base_url": segment_standin.url}))
    good_events(sync, 3)
    insert_raw(sync.store, loyalty_events, id=10)
    assert sync.run(Stream.EVENTS, "run-regular").watermark_after == 10
    # Late commits into the gap the run passed: a good one and three that cannot be sent.
    late_good = insert_raw(sync.store, loyalty_events, id=4)
    bad = [
        insert_raw(sync.store, loyalty_events, id=5, data=b'{"points": "\xff"}'),
        insert_raw(sync.store, loyalty_events, id=6, data="[1, 2]"),
        insert_raw(sync.store, loyalty_events, id=7, occurred_at=late_unreadable_time()),
    ]
    done = reconcile_events(sync, sync.settings.logs.dir, "reconcile-1", DAY)
    assert [e.id for e in done.found.events] == [late_good]
    assert [r.id for r in done.found.unsendable] == bad
    assert (done.sent.counts.sent, done.sent.counts.failed) == (1, 3)
    failed = failed_in_run(sync, "reconcile-1")
    assert sorted(failed) == bad
    assert all(failed[i].startswith(f"loyalty_events id {i}: column ") for i in bad)

    again = reconcile_events(sync, sync.settings.logs.dir, "reconcile-2", DAY)
    assert again.found.events == [] and again.found.unsendable == [] and again.sent is None
