"""PostgreSQL late commits: T1 takes id N and stays open, T2 commits N+1; N is never skipped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from segment_sync import factory
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.segment.messages import message_id
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY

INSERT = {
    Stream.EVENTS: (
        "INSERT INTO loyalty_events (customer_id, action, data, occurred_at) "
        "VALUES ('c-late', 'point_add', '{\"points\": 7}', %s) RETURNING id"
    ),
    Stream.PROFILES: (
        "INSERT INTO profile_changes (customer_id, attributes, occurred_at) "
        "VALUES ('c-late', '{\"email\": \"late@example.com\"}', %s) RETURNING id"
    ),
}
KIND = {Stream.EVENTS: "evt", Stream.PROFILES: "prf"}


def append(store: LoyaltyStore, stream: Stream, count: int) -> list[int]:
    """Commit `count` rows the settings send (allow-listed action or field)."""
    if stream is Stream.EVENTS:
        return store.append_events(
            [NewEvent(f"c-{i}", "point_add", {"n": i}) for i in range(count)]
        )
    return store.append_profile_changes(
        [NewProfileChange(f"c-{i}", {"email": f"{i}@example.com"}) for i in range(count)]
    )


@pytest.fixture
def late(pg_url, write_settings, segment_standin) -> Iterator:
    """Rows 1-3 committed, then T1 holds id 4 open (its own connection) while 5 commits."""
    path = write_settings(loyalty_store={"url": pg_url}, outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    store = LoyaltyStore(pg_url, settle_s=0.3)

    def start(stream: Stream) -> tuple[psycopg.Connection, str, int]:
        assert append(store, stream, 3) == [1, 2, 3]
        t1 = psycopg.connect(pg_url)  # a transaction is open from the first statement
        occurred_at = datetime.now(UTC)
        (held,) = t1.execute(INSERT[stream], (occurred_at,)).fetchone()
        assert append(store, stream, 1) == [held + 1]  # T2 commits the next id first
        return t1, message_id(KIND[stream], held, occurred_at), held

    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir), store=store)
    connections: list[psycopg.Connection] = []

    def begin(stream: Stream):
        t1, mid, held = start(stream)
        connections.append(t1)
        return t1, mid, held

    yield sync, begin
    for t1 in connections:
        t1.close()
    store.close()


@pytest.mark.parametrize("stream", [Stream.EVENTS, Stream.PROFILES])
def test_a_row_committed_after_a_later_id_is_still_delivered(late, segment_standin, stream):
    sync, begin = late
    t1, held_message_id, held = begin(stream)
    first = sync.run(stream, "run-while-open")
    assert first.watermark_after == held - 1  # not past the open transaction's id
    assert held_message_id not in segment_standin.accepted_message_ids()
    t1.commit()
    second = sync.run(stream, "run-after-commit")
    assert second.watermark_after == held + 1
    received = segment_standin.accepted_message_ids()
    assert held_message_id in received and len(received) == len(set(received)) == 5


@pytest.mark.parametrize("stream", [Stream.EVENTS, Stream.PROFILES])
def test_the_sensors_max_id_stays_below_an_open_transactions_id(late, stream):
    sync, begin = late
    t1, _, held = begin(stream)
    assert sync.store.newest_id(stream) == held + 1  # visible
    assert sync.store.max_id(stream) == held - 1  # safe to request
    t1.commit()
    assert sync.store.max_id(stream) == held + 1


def test_a_rolled_back_id_is_passed_once_no_older_transaction_is_open(late, segment_standin):
    sync, begin = late
    t1, _, held = begin(Stream.EVENTS)
    assert sync.run(Stream.EVENTS, "run-while-open").watermark_after == held - 1
    t1.rollback()
    # Settling waits for every older transaction on the server (other databases too): give
    # other work on a shared test server time; a quiet server answers at once.
    sync.store.settle_s = 30.0
    assert sync.run(Stream.EVENTS, "run-after-rollback").watermark_after == held + 1
    assert len(segment_standin.accepted_message_ids()) == 4
