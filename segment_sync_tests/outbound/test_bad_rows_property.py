"""Generated rows, good and bad, in a real SQLite store, through the real outbound sync to the
Segment stand-in over loopback: one bad row is one failed row, and every good row goes once.

The rows are the class of input a store written by other clients can hold (see odd_rows):
bytes that are not UTF-8 in any text column, BLOBs, JSON nested past what a parser takes,
numbers such as `1e5`, `-0` and `1e309`, control characters, Unicode edge cases, times that
are not times, empty customer IDs, and messages within a few bytes of Segment's 32 KB, as sent
and as re-serialised. Whether a row is good is decided here, from Segment's rules, not by the
code under test.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segment_sync import factory
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import loyalty_events
from segment_sync.outbound.dry_run import plan_outbound
from segment_sync.outbound.replay import replay
from segment_sync.outbound.results import OutboundFailed
from segment_sync.outbound.sync import OutboundSync
from segment_sync.redaction import Redactor
from segment_sync.settings import parse_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.odd_rows import event_rows
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.row_oracle import PLAIN_ROW, SEGMENT_MAX_MESSAGE_BYTES, is_good
from segment_sync_tests.outbound.syncs import outbound_sync

generated = settings(
    max_examples=50,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the stand-in is reset for each example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
rows_with_good_ones = st.lists(event_rows(), min_size=1, max_size=24).map(
    lambda rows: [*rows, *[{} for _ in range(len(rows) // 2 + 1)]]  # plain good rows among them
)


# Members of the class named in issue 24, always tried: bytes that are not UTF-8 in data and in
# customer_id, data that is not JSON, 30 KB of 1e5 (about 67 KB once re-serialised), nesting
# past what can be re-serialised; among good rows.
KNOWN = [
    {"data": b'{"points": "\xff"}'},
    {"customer_id": b"c-\xff"},
    {"data": '{"points": 1,'},
    {"data": '{"n":[' + "1e5," * 7_499 + "1e5]}"},
    {"data": '{"a":' + "[" * 300 + "]" * 300 + "}"},
    *[{} for _ in range(5)],
]


def fresh_sync(root: Path, standin_url: str) -> OutboundSync:
    configured = parse_settings(
        {
            "loyalty_store": {"url": f"sqlite:///{root}/loyalty.db"},
            "outbound": {
                "base_url": standin_url,
                "event_sync": ["point_add"],
                "state_url": f"sqlite:///{root}/state.db",
                "max_retries": 0,
                "follow_s": 0,
            },
            "logs": {"dir": str(root / "logs")},
        }
    )
    return outbound_sync(configured)


def stored(sync: OutboundSync, rows: list[dict[str, object]]) -> tuple[list[int], list[int]]:
    """Insert the rows; (good ids, bad ids)."""
    good, bad = [], []
    for columns in rows:
        id_ = insert_raw(sync.store, loyalty_events, **{**PLAIN_ROW, **columns})
        (good if is_good(columns, id_) else bad).append(id_)
    return good, bad


def delivered(standin) -> Counter[int]:
    return Counter(int(m["messageId"].split("-")[2]) for m in standin.messages)


def failed_reasons(sync: OutboundSync, run_id: str) -> dict[int, str]:
    with connect(sync.settings.logs.dir) as con:
        rows = con.execute(
            "SELECT source_id, error FROM outbound_messages WHERE run_id = ? AND outcome = 'failed'",
            [run_id],
        ).fetchall()
    assert len(rows) == len({source_id for source_id, _ in rows})  # one row per failed row
    return dict(rows)


def assert_each_bad_row_fails_naming_itself(failed: dict[int, str], bad: list[int]) -> None:
    assert sorted(failed) == bad
    for id_, reason in failed.items():
        assert reason.startswith(f"loyalty_events id {id_}: ")


def assert_nothing_over_the_limit(standin) -> None:
    for message in standin.messages:
        assert len(orjson.dumps(message)) <= SEGMENT_MAX_MESSAGE_BYTES


@pytest.fixture
def fresh(segment_standin):
    """A function that gives each example an empty store, progress, logs and stand-in."""

    def make(root: str) -> OutboundSync:
        segment_standin.reset()
        segment_standin.set_faults(outage_until=0.0)
        return fresh_sync(Path(root), segment_standin.url)

    return make


@generated
@example(rows=KNOWN)
@given(rows=rows_with_good_ones)
def test_a_run_delivers_every_good_row_once_and_fails_each_bad_row_alone(
    fresh, segment_standin, rows
):
    with tempfile.TemporaryDirectory() as root:
        sync = fresh(root)
        good, bad = stored(sync, rows)
        state = factory.outbound_state(sync.settings, WRITE_KEY, store_url=sync.store.url)
        (plan,) = plan_outbound(
            sync.settings, sync.store, state, [Stream.EVENTS], Redactor([])
        ).streams
        assert (plan.messages, plan.failed) == (len(good), len(bad))

        result = sync.run(Stream.EVENTS, "run-1")  # raises nothing: a bad row is not a failure
        assert delivered(segment_standin) == Counter(good)
        assert (result.counts.sent, result.counts.failed) == (len(good), len(bad))
        assert_each_bad_row_fails_naming_itself(failed_reasons(sync, "run-1"), bad)
        assert_nothing_over_the_limit(segment_standin)
        assert sync.state.watermark(Stream.EVENTS) == max(good + bad)


@generated
@example(rows=KNOWN)
@given(rows=rows_with_good_ones)
def test_a_replay_after_an_outage_delivers_every_good_row_once_and_fails_each_bad_row_again(
    fresh, segment_standin, rows
):
    with tempfile.TemporaryDirectory() as root:
        sync = fresh(root)
        good, bad = stored(sync, rows)
        segment_standin.set_faults(outage_until=datetime.now(UTC).timestamp() + 3600)
        with pytest.raises(OutboundFailed):  # the outage, not a row, stops this run
            sync.run(Stream.EVENTS, "run-outage")
        assert_each_bad_row_fails_naming_itself(failed_reasons(sync, "run-outage"), bad)
        segment_standin.set_faults(outage_until=0.0)

        (done,) = replay(sync, sync.settings.logs.dir, [Stream.EVENTS], "run-replay")
        assert done.found == len(good) + len(bad)
        assert delivered(segment_standin) == Counter(good)
        assert_each_bad_row_fails_naming_itself(failed_reasons(sync, "run-replay"), bad)
        assert_nothing_over_the_limit(segment_standin)
