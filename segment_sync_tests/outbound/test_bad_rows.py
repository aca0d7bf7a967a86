"""A row the message builder cannot handle is one failed message; the rest of the chunk goes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from segment_sync import factory
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events, profile_changes
from segment_sync.outbound.results import OutboundFailed, OutboundResult
from segment_sync.outbound.sync import OutboundSync
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound import raw_rows
from segment_sync_tests.outbound.raw_rows import Blob
from segment_sync_tests.outbound.syncs import outbound_sync


@pytest.fixture(params=["sqlite", "postgresql"])
def sync(request, write_settings, segment_standin) -> OutboundSync:
    store = {} if request.param == "sqlite" else {"url": request.getfixturevalue("pg_url")}
    path = write_settings(loyalty_store=store, outbound={"base_url": segment_standin.url})
    return outbound_sync(path)


def insert_raw(store: LoyaltyStore, table: sa.Table, **columns) -> int:
    """A row written by something other than this package, as it is in the store."""
    row = {"customer_id": "c-bad", "occurred_at": datetime.now(UTC), **columns}
    with store.engine.begin() as conn:
        return conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()


def run(sync: OutboundSync, stream: Stream) -> OutboundResult:
    """The run's result, whether or not a failed row makes the run report failure."""
    try:
        return sync.run(stream, f"run-{stream.value}")
    except OutboundFailed as failed:
        return failed.result


def failed_rows(sync: OutboundSync) -> list[tuple]:
    with connect(sync.settings.logs.dir) as con:
        return con.execute(
            "SELECT source_id, error FROM outbound_messages WHERE outcome = 'failed'"
        ).fetchall()


def sent_source_ids(standin) -> list[int]:
    return sorted(int(m["messageId"].split("-")[2]) for m in standin.messages)


def good_events(store: LoyaltyStore, n: int) -> list[int]:
    return store.append_events([NewEvent(f"c-{i}", "point_add", {"n": i}) for i in range(n)])


def test_an_event_whose_data_is_not_json_fails_alone_and_the_rest_is_delivered(
    sync, segment_standin
):
    before = good_events(sync.store, 5)
    bad = insert_raw(sync.store, loyalty_events, action="point_add", data='{"points": 1,')
    after = good_events(sync.store, 5)
    result = run(sync, Stream.EVENTS)
    assert sent_source_ids(segment_standin) == before + after
    ((source_id, error),) = failed_rows(sync)
    assert source_id == bad
    assert error.startswith(f"loyalty_events id {bad}: column data is not valid JSON")
    assert "fix the row, then replay" in error
    assert result.counts.failed == 1 and result.counts.sent == 10
    assert sync.state.watermark(Stream.EVENTS) == after[-1]


def test_a_profile_change_whose_attributes_are_not_an_object_fails_alone(sync, segment_standin):
    good = [NewProfileChange(f"c-{i}", {"email": f"{i}@example.com"}) for i in range(4)]
    first = sync.store.append_profile_changes(good)
    bad = insert_raw(sync.store, profile_changes, attributes="[1, 2]")
    last = sync.store.append_profile_changes(good)
    run(sync, Stream.PROFILES)
    assert sent_source_ids(segment_standin) == first + last
    ((source_id, error),) = failed_rows(sync)
    assert source_id == bad and f"profile_changes id {bad}: column attributes" in error
    assert sync.state.watermark(Stream.PROFILES) == last[-1]


def test_an_event_with_an_unreadable_timestamp_fails_alone_on_sqlite(
    write_settings, segment_standin
):
    settings = load_settings(write_settings(outbound={"base_url": segment_standin.url}))
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    good = good_events(sync.store, 3)
    with sync.store.engine.begin() as conn:  # SQLite stores whatever text it is given
        conn.execute(
            sa.text(
                "INSERT INTO loyalty_events (customer_id, action, data, occurred_at, origin) "
                "VALUES ('c-bad', 'point_add', '{}', 'yesterday-ish', 'loyalty')"
            )
        )
    more = good_events(sync.store, 2)
    run(sync, Stream.EVENTS)
    assert sent_source_ids(segment_standin) == good + more
    ((source_id, error),) = failed_rows(sync)
    assert source_id == good[-1] + 1
    assert f"loyalty_events id {source_id}: column occurred_at cannot be read" in error
    assert sync.state.watermark(Stream.EVENTS) == more[-1]


@pytest.fixture
def sqlite_sync(write_settings, segment_standin) -> OutboundSync:
    """SQLite stores text that is not UTF-8 as it is given (PostgreSQL refuses it)."""
    return outbound_sync(write_settings(outbound={"base_url": segment_standin.url}))


@pytest.mark.parametrize("blob", [False, True], ids=["text", "blob"])
@pytest.mark.parametrize("column", ["data", "customer_id", "action", "occurred_at"])
def test_an_event_with_bytes_that_are_not_utf8_fails_alone_and_the_40_around_it_are_delivered(
    sqlite_sync, segment_standin, column, blob
):
    before = good_events(sqlite_sync.store, 20)
    raw = b'{"points": "\xff\xfe"}' if column == "data" else b"c-\xff"
    bad = raw_rows.insert_raw(
        sqlite_sync.store, loyalty_events, **{column: Blob(raw) if blob else raw}
    )
    after = good_events(sqlite_sync.store, 20)
    result = run(sqlite_sync, Stream.EVENTS)
    assert sent_source_ids(segment_standin) == before + after
    ((source_id, error),) = failed_rows(sqlite_sync)
    assert source_id == bad
    assert error.startswith(f"loyalty_events id {bad}: column {column} is not valid UTF-8")
    assert result.counts.failed == 1 and result.counts.sent == 40
    assert sqlite_sync.state.watermark(Stream.EVENTS) == after[-1]


def test_blobs_that_hold_utf8_are_read_as_their_text_beside_a_row_that_is_not_utf8(
    sqlite_sync, segment_standin
):
    store = sqlite_sync.store
    data = raw_rows.insert_raw(store, loyalty_events, data=Blob(b'{"points": 7}'))
    customer = raw_rows.insert_raw(store, loyalty_events, customer_id=Blob("c-é".encode()))
    bad = raw_rows.insert_raw(store, loyalty_events, customer_id=b"c-\xff")
    run(sqlite_sync, Stream.EVENTS)
    sent = {int(m["messageId"].split("-")[2]): m for m in segment_standin.messages}
    assert sorted(sent) == [data, customer]
    assert sent[data]["properties"] == {"points": 7} and sent[customer]["userId"] == "c-é"
    assert [source_id for source_id, _ in failed_rows(sqlite_sync)] == [bad]


def test_profile_attributes_that_are_not_utf8_fail_alone(sqlite_sync, segment_standin):
    good = [NewProfileChange(f"c-{i}", {"email": f"{i}@example.com"}) for i in range(3)]
    first = sqlite_sync.store.append_profile_changes(good)
    raw = b'{"email": "\xc3"}'  # a truncated two-byte sequence
    bad = raw_rows.insert_raw(sqlite_sync.store, profile_changes, attributes=raw)
    last = sqlite_sync.store.append_profile_changes(good)
    run(sqlite_sync, Stream.PROFILES)
    assert sent_source_ids(segment_standin) == first + last
    ((source_id, error),) = failed_rows(sqlite_sync)
    assert source_id == bad
    assert f"profile_changes id {bad}: column attributes is not valid UTF-8" in error


# Stored JSON text Segment cannot take as it is, and the start of each one's reason.
UNSENDABLE_JSON = {
    '{"n":[' + "1e5," * 7_499 + "1e5]}": "message is 30",  # 100000.0 each once re-serialised
    '{"a":' + "[" * 300 + "]" * 300 + "}": "message is nested more than 254 levels deep",
    '{"a":' + "[" * 1100 + "]" * 1100 + "}": "column data is not valid JSON",
    '{"a":"x\x01y"}': "column data is not valid JSON",  # a raw control character
    '{"a":"\\ud800"}': "column data is not valid JSON",  # a lone surrogate
    '{"a":1e309}': "column data is not valid JSON",  # beyond a double
}


def test_json_text_segment_cannot_take_fails_alone_and_odd_text_goes_as_stored(
    sync, segment_standin
):
    odd = '{"zero":-0,"big":1E5,"text":"\\u2028\\ufeff\U0001f600 e\u0301"}'
    bad = {
        insert_raw(sync.store, loyalty_events, action="point_add", data=text): why
        for text, why in UNSENDABLE_JSON.items()
    }
    good = insert_raw(sync.store, loyalty_events, action="point_add", data=odd)
    around = good_events(sync.store, 5)
    run(sync, Stream.EVENTS)
    assert sent_source_ids(segment_standin) == sorted([good, *around])
    failed = dict(failed_rows(sync))
    assert sorted(failed) == sorted(bad)
    for id_, why in bad.items():
        assert failed[id_].startswith(f"loyalty_events id {id_}: {why}")
    (sent,) = [m for m in segment_standin.messages if m["messageId"].startswith(f"ss-evt-{good}-")]
    assert sent["properties"] == orjson.loads(odd)
