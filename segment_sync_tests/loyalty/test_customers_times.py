"""What the store knows of customers (external ID pairings, attribute histories) is read past a
row whose time or text does not read, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events, profile_changes
from segment_sync_tests.outbound.raw_rows import insert_raw


def test_sqlite_pairings_and_histories_skip_what_does_not_read(tmp_path):
    store = LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db")
    store.append_events([NewEvent("c-1", "point_add", external_customer_id="x-1")])
    store.append_profile_changes([NewProfileChange("anna", {"country": "DE"})])
    insert_raw(store, loyalty_events, customer_id="c-2", external_customer_id="x-2",
               occurred_at="yesterday")  # fmt: skip
    insert_raw(store, loyalty_events, customer_id="c-3", external_customer_id="x-3",
               occurred_at="2026-01-01 10:00:00+00:00")  # fmt: skip
    insert_raw(store, profile_changes, customer_id="anna", attributes=b'{"country":"\xff"}')
    insert_raw(store, profile_changes, customer_id="anna", attributes='{"country": "FR"}',
               occurred_at="9999-12-31 23:59:59.999999-05:00")  # fmt: skip
    insert_raw(store, profile_changes, customer_id="anna", attributes='{"country": "US"}',
               occurred_at="2026-01-01T10:00:00Z")  # fmt: skip

    # A pairing whose time does not read still pairs (as the oldest); none stops the read.
    assert store.customers_by_external_id(["x-1", "x-2", "x-3"]) == {
        "x-1": "c-1", "x-2": "c-2", "x-3": "c-3"
    }  # fmt: skip
    history = store.attribute_history(["anna"], "country")
    assert [(h[2]) for h in history["anna"]] == ["US", "DE"]  # 2026 first; the odd two left out
    assert history["anna"][0][0] == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_postgresql_pairings_and_histories_skip_infinite_times(pg_url):
    store = LoyaltyStore(pg_url)
    store.append_events([NewEvent("c-1", "point_add", external_customer_id="x-1")])
    store.append_profile_changes([NewProfileChange("anna", {"country": "DE"})])
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO loyalty_events (customer_id, external_customer_id, action, occurred_at) "
                "VALUES ('c-2', 'x-2', 'point_add', 'infinity')"
            )
        )
        conn.execute(sa.text(
            "INSERT INTO profile_changes (customer_id, attributes, occurred_at) "
            "VALUES ('anna', '{\"country\": \"FR\"}', '12000-01-01 00:00:00+00')"))  # fmt: skip

    assert store.customers_by_external_id(["x-1", "x-2"]) == {"x-1": "c-1", "x-2": "c-2"}
    assert [h[2] for h in store.attribute_history(["anna"], "country")["anna"]] == ["DE"]
