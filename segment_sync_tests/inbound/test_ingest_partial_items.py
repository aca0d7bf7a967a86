"""An item two mappings turn into two Antavo events, one registered and one refused: the buffer
keeps what was registered, and a replay sends only the rest (Antavo has no idempotency key).
Real ingest, real Antavo stand-in on loopback, real SQLite and PostgreSQL buffers."""

from __future__ import annotations

import pytest

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.replay import replay_inbound
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

CHECKOUT = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"action": {"@literal": "checkout"}},
}
REFERRAL = {
    "name": "Referrals",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"customer": {"@path": "$.properties.referrer"}, "action": {"@literal": "referral"}},
}
ORDER = {"type": "track", "event": "Order Completed", "userId": "c-1", "messageId": "half-1",
         "properties": {"referrer": "c-404"}}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def buffer_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/in.db"
    return request.getfixturevalue("pg_url")


def ingest(settings, run_id: str):
    return factory.inbound_ingest(
        settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir), backoff_base_s=0.01
    ).run(run_id)


def test_a_replay_of_a_half_registered_item_sends_only_what_antavo_refused(
    write_settings, antavo_standin, buffer_url
):
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": buffer_url,
                 "mappings": [CHECKOUT, REFERRAL]},
    )  # fmt: skip
    settings = load_settings(path)
    buffer = InboundBuffer(settings.inbound.buffer_url)
    buffer.add_many([ORDER])
    antavo_standin.configure(known_customers=["c-1"])

    first = ingest(settings, "run-1")
    (checkout,) = antavo_standin.registered(customer="c-1", action="checkout")
    item = buffer.get_by_message_id("half-1")
    assert (first.counts.failed, item.status) == (1, "failed")
    assert item.antavo_event_ids == {"Orders": checkout["id"]}

    replay_inbound(buffer)  # the referrer is still unknown: fails again, checkout not resent
    ingest(settings, "run-2")
    item = buffer.get_by_message_id("half-1")
    assert item.status == "failed" and "Customer not found" in item.last_error
    assert item.antavo_event_ids == {"Orders": checkout["id"]}

    antavo_standin.configure(known_customers=["c-1", "c-404"])  # the operator fixes it
    replay_inbound(buffer)
    assert ingest(settings, "run-3").ok
    item = buffer.get_by_message_id("half-1")
    assert len(antavo_standin.registered(customer="c-1", action="checkout")) == 1
    (referral,) = antavo_standin.registered(customer="c-404", action="referral")
    assert item.status == "done"
    assert item.antavo_event_ids == [checkout["id"], referral["id"]]
