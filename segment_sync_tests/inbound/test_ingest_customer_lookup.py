"""External customer IDs on a PostgreSQL loyalty store: an ID the store cannot look up fails its
item alone; a store that cannot answer fails the run and leaves every item pending. Real ingest,
real Antavo stand-in on loopback, real PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.customer_ids import resolve_customers
from segment_sync.inbound.ingest_result import CustomerStoreError
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

ORDERS = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"action": {"@literal": "checkout"}},
}


def order(message_id: str, user_id: str) -> dict:
    return {"type": "track", "event": "Order Completed", "messageId": message_id, "userId": user_id}


@pytest.fixture
def setup(write_settings, antavo_standin, tmp_path, pg_url):
    """External IDs ext-1..ext-3 paired in a PostgreSQL store; the buffer holds their orders and
    one whose userId holds a NUL character (valid JSON, which PostgreSQL text cannot hold)."""
    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        loyalty_store={"url": pg_url},
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "mappings": [ORDERS], "max_attempts": 3},
    )  # fmt: skip
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events(
        [NewEvent(f"c-{n}", "point_add", external_customer_id=f"ext-{n}") for n in (1, 2, 3)]
    )
    buffer = InboundBuffer(settings.inbound.buffer_url)
    buffer.add_many(
        [order("o-1", "ext-1"), order("o-nul", "ext-\x00"), order("o-2", "ext-2"),
         order("o-3", "ext-3")]
    )  # fmt: skip
    return settings, buffer, store


def ingester(settings):
    return factory.inbound_ingest(
        settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir), backoff_base_s=0.01
    )


def test_an_external_id_the_store_cannot_look_up_fails_its_item_alone(setup, antavo_standin):
    settings, buffer, _ = setup

    result = ingester(settings).run("run-1")

    assert not result.ok and (result.counts.done, result.counts.failed) == (3, 1)
    assert sorted(e["customer"] for e in antavo_standin.events) == ["c-1", "c-2", "c-3"]
    nul = buffer.get_by_message_id("o-nul")
    assert nul.status == "failed"
    assert "cannot look up external_customer_id 'ext-\\x00'" in nul.last_error
    assert "NUL" in nul.last_error and "SELECT" not in nul.last_error
    (error,) = (
        connect(settings.logs.dir)
        .execute("SELECT error FROM inbound_log WHERE message_id = 'o-nul'")
        .fetchone()
    )
    assert "cannot look up" in error and "SELECT" not in error


def test_a_store_that_cannot_answer_fails_the_run_and_leaves_every_item_pending(
    setup, antavo_standin
):
    settings, buffer, store = setup
    ingest = ingester(settings)
    with store.engine.begin() as conn:  # a broken store: not any item's fault
        conn.execute(sa.text("DROP TABLE loyalty_events"))

    with pytest.raises(CustomerStoreError) as raised:
        ingest.run("run-1")

    assert "loyalty_store.url" in str(raised.value) and "pending" in str(raised.value)
    assert "SELECT" not in str(raised.value)
    assert antavo_standin.events == []
    assert buffer.counts() == {"pending": 4, "done": 0, "failed": 0, "unknown": 0}
    assert {item.attempts for item in buffer.items(limit=10)} == {0}


def test_bad_ids_are_found_among_many_with_few_lookups(tmp_path):
    store = LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db")
    store.append_events([NewEvent("c-5", "point_add", external_customer_id="e-5")])
    calls = []

    def lookup(ids):
        calls.append(len(ids))
        return store.customers_by_external_id(ids)

    wanted = [f"e-{n}" for n in range(64)] + ["e-\ud83d"]  # a lone surrogate: not UTF-8
    known, refused = resolve_customers(lookup, wanted)
    assert known == {"e-5": "c-5"} and list(refused) == ["e-\ud83d"]
    assert "UnicodeEncodeError" in refused["e-\ud83d"]
    assert len(calls) <= 2 * 7 + 1  # halving: two lookups per level, not one per ID
