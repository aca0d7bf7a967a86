"""The loyalty store reads the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segment_sync.loyalty.records import BadRow, NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import loyalty_events

WHEN = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC)


def test_appended_events_read_back_in_id_order_with_utc_times(store):
    ids = store.append_events(
        [
            NewEvent("c-1", "point_add", {"points": 5, "nested": {"a": [1, 2]}}, "ext-1", WHEN),
            NewEvent(
                "c-2", "checkout", {"total": 9.5}, None, WHEN + timedelta(seconds=1), "segment"
            ),
        ]
    )
    first, second = store.events_after(0, ids[-1], 10)
    assert [first.id, second.id] == ids
    assert (first.customer_id, first.external_customer_id, first.action) == (
        "c-1",
        "ext-1",
        "point_add",
    )
    assert first.data == {"points": 5, "nested": {"a": [1, 2]}}
    assert first.occurred_at == WHEN and first.occurred_at.tzinfo is not None
    assert second.origin == "segment" and second.external_customer_id is None


def test_rows_after_respects_both_bounds_and_the_limit(store):
    ids = store.append_events([NewEvent(f"c-{i}", "point_add", {}) for i in range(10)])
    assert [e.id for e in store.events_after(ids[2], ids[7], 3)] == ids[3:6]
    assert [e.id for e in store.rows_after(Stream.EVENTS, ids[7], ids[-1], 100)] == ids[8:]


def test_max_id_is_zero_for_an_empty_stream_and_the_newest_id_after(store):
    assert store.max_id(Stream.PROFILES) == 0
    (pid,) = store.append_profile_changes([NewProfileChange("c-1", {"email": "a@example.com"})])
    assert store.max_id(Stream.PROFILES) == pid
    (change,) = store.profile_changes_after(0, pid, 10)
    assert change.attributes == {"email": "a@example.com"}


def test_events_between_selects_by_occurrence_time(store):
    store.append_events(
        [NewEvent("c-1", "a", {}, occurred_at=WHEN + timedelta(hours=h)) for h in range(5)]
    )
    found = store.events_between(WHEN + timedelta(hours=1), WHEN + timedelta(hours=3))
    assert [e.occurred_at for e in found] == [WHEN + timedelta(hours=1), WHEN + timedelta(hours=2)]


def test_a_postgresql_store_that_cannot_be_read_names_the_setting_and_the_reason():
    import sqlalchemy as sa

    from segment_sync.loyalty.arrow_reader import ArrowReader, StoreReadError

    engine = sa.create_engine("postgresql+psycopg://no-such-role:pw-s3cret-9@127.0.0.1:5432/test")
    with pytest.raises(StoreReadError, match="loyalty_store.url") as raised:
        ArrowReader(engine, rows=lambda *_: []).read("loyalty_events", 0, 10, 10)
    assert 'role "no-such-role" does not exist' in str(raised.value)
    assert "pw-s3cret-9" not in str(raised.value)


def test_an_external_customer_id_resolves_to_its_newest_pairing_across_both_tables(store):
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    store.append_events(
        [
            NewEvent("c-old", "checkout", external_customer_id="ext-1", occurred_at=t0),
            NewEvent("c-2", "checkout", external_customer_id="ext-2", occurred_at=t0),
            NewEvent("c-9", "checkout", occurred_at=t0),  # no external ID
        ]
    )
    later = t0 + timedelta(hours=1)
    store.append_profile_changes(
        [NewProfileChange("c-new", {"email": "x@example.com"}, "ext-1", occurred_at=later)]
    )
    wanted = ["ext-1", "ext-2", "ext-unknown"]
    assert store.customers_by_external_id(wanted) == {"ext-1": "c-new", "ext-2": "c-2"}
    assert store.customers_by_external_id([]) == {}


def test_every_read_gives_a_row_that_does_not_parse_as_a_bad_row_in_its_place(store):
    store.append_events(
        [NewEvent("c-1", "a", {"n": h}, occurred_at=WHEN + timedelta(hours=h)) for h in range(6)]
    )
    with store.engine.begin() as conn:  # written by another client
        conn.execute(
            loyalty_events.insert().values(
                id=7, customer_id="c-2", action="a", data="{", occurred_at=WHEN + timedelta(hours=3)
            )
        )
    by_ids = store.rows_by_ids(Stream.EVENTS, [7, 5, 2, 9, 2])
    between = store.rows_between(
        Stream.EVENTS, WHEN + timedelta(hours=1), WHEN + timedelta(hours=5), after_id=2, upto_id=7
    )
    for rows, ids in ((by_ids, [2, 5, 7]), (between, [3, 4, 5, 7])):
        assert [r.id for r in rows] == ids
        assert all(isinstance(r, BadRow) == (r.id == 7) for r in rows)
    assert between[:2] == store.rows_after(Stream.EVENTS, 2, 4, 10)
    assert by_ids[-1].reason.startswith("loyalty_events id 7: column data is not valid JSON")
    assert store.events_between(WHEN, WHEN + timedelta(days=1))[-1] == by_ids[-1]
