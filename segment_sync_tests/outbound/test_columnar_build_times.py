"""Stored times of every form: the columnar and the per-row builders read each the same, and
a stream with one row whose time does not read delivers the rows beside it.

The fast query reads only the stored form (naive UTC, six digits) and leaves any other text to
the per-row builder, whose reader (stored_time.read_time) decides; a text both can parse but
read differently (24:00:00, year 0, a leap second) must not be read by the query at all.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segment_sync.logs.views import connect
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import loyalty_events
from segment_sync.outbound.reconcile import reconcile_events
from segment_sync.outbound.replay import replay
from segment_sync.outbound.results import OutboundFailed
from segment_sync.segment.messages import message_id
from segment_sync_tests.loyalty.time_texts import EDGES, stored_times, time_texts
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.test_bad_rows_property import fresh_sync
from segment_sync_tests.outbound.test_columnar_build import assert_same_messages, both_builders

NOW = "2026-01-01 00:00:00.000000"
builders = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def _event(when: str) -> tuple:
    return ("c-1", None, "point_add", '{"n":1}', when, "loyalty")


def _profile(when: str) -> tuple:
    return ("c-1", None, '{"email":"a@example.com"}', when, "loyalty")


@builders
@example(whens=[NOW, "2024-06-30 24:00:00.000000", NOW])
@example(whens=["0000-01-01 00:00:00.000000", "2026-06-30 23:59:60.000000"])
@example(whens=["2026-01-01 10:00:00+00:00", "2026-01-01T10:00:00Z", "2026-01-01 10:00+02:00"])
@example(whens=EDGES)
@example(whens=["2403-04-21 10:36:02.105999", "9999-12-31 23:59:59.999999"])
@given(whens=st.lists(time_texts() | st.just(NOW), min_size=1, max_size=12))
def test_both_builders_read_every_time_text_alike(whens):
    for stream, row, exact in ((Stream.EVENTS, _event, True), (Stream.PROFILES, _profile, False)):
        columnar, reference, _ = both_builders(stream, [row(w) for w in whens], "customer_id")
        assert_same_messages(columnar, reference, exact_bytes=exact)
        for not_sent in columnar.not_sent:
            assert "column occurred_at cannot be read (time " in not_sent.reason
            assert "; fix the row, then replay" in not_sent.reason


def _oracle(value: object) -> datetime | None:
    """The instant a stored time names, by ISO 8601 as Python reads it; None if none."""
    try:
        text = value.decode() if isinstance(value, bytes) else value
        when = datetime.fromisoformat(text)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None


def _outcomes(sync) -> dict[int, set[str]]:
    with connect(sync.settings.logs.dir) as con:
        rows = con.execute("SELECT source_id, outcome FROM outbound_messages").fetchall()
    seen: dict[int, set[str]] = {}
    for source_id, outcome in rows:
        seen.setdefault(source_id, set()).add(outcome)
    return seen


@pytest.fixture
def fresh(segment_standin):
    def make(root: str):
        segment_standin.reset()
        return fresh_sync(Path(root), segment_standin.url)

    return make


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(when="9999-12-31 23:59:59.999999-05:00")
@example(when=b"2026-01-01 10:00:00.000000\xfe")
@example(when="2026-01-01 10:00:00+00:00")
@given(when=stored_times().filter(lambda v: isinstance(v, str | bytes | int | float)))
def test_one_row_whose_time_is_any_text_fails_alone_or_is_sent_as_it_reads(
    fresh, segment_standin, when
):
    with tempfile.TemporaryDirectory() as root:
        sync = fresh(root)
        good = [insert_raw(sync.store, loyalty_events) for _ in range(2)]
        odd = insert_raw(sync.store, loyalty_events, occurred_at=when)
        good += [insert_raw(sync.store, loyalty_events) for _ in range(2)]
        try:
            sync.run(Stream.EVENTS, "run-1")
        except OutboundFailed as failed:  # the odd row's failure, never an exception
            assert failed.result.counts.failed == 1
        sent = Counter(int(m["messageId"].split("-")[2]) for m in segment_standin.messages)
        at = _oracle(when)
        assert sent == Counter(good + ([odd] if at else []))
        if at:
            ids = {m["messageId"] for m in segment_standin.messages}
            assert message_id("evt", odd, at) in ids
        assert _outcomes(sync)[odd] == ({"delivered"} if at else {"failed"})
        (done,) = replay(sync, sync.settings.logs.dir, [Stream.EVENTS], "run-replay")
        assert done.found == (0 if at else 1)


def test_a_row_at_24_00_is_failed_by_the_run_and_reconciliation_alike(fresh, segment_standin):
    """Once DuckDB read 24:00:00 as the next midnight and delivered the row, and reconciliation
    (the per-row reader) logged the delivered row as failed."""
    with tempfile.TemporaryDirectory() as root:
        sync = fresh(root)
        good = insert_raw(sync.store, loyalty_events)
        yesterday = datetime.now(UTC) - timedelta(days=1)
        odd = insert_raw(
            sync.store, loyalty_events, occurred_at=f"{yesterday:%Y-%m-%d} 24:00:00.000000"
        )
        sync.run(Stream.EVENTS, "run-1")  # a failed row is not a failed run
        assert [m["messageId"].split("-")[2] for m in segment_standin.messages] == [str(good)]
        with contextlib.suppress(OutboundFailed):  # the odd row is failed again: not delivered
            reconcile_events(sync, sync.settings.logs.dir, "rec-1", timedelta(days=2))
        assert _outcomes(sync)[odd] == {"failed"}
