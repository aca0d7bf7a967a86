"""Faults that are not the data's (Antavo down, throttling every retry, unreachable, a base URL
whose path is wrong) leave every item pending with no attempt used, and fail the run with a
message naming the fix. Antavo's own refusal of an event still fails it. Real ingest, real Antavo
stand-in on loopback, real SQLite buffer."""

from __future__ import annotations

import socket

import pytest

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest_result import AntavoFaultError
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

ORDERS = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"action": {"@literal": "checkout"}},
}
ITEMS = 120  # three bulk requests


@pytest.fixture
def setup(write_settings, antavo_standin, tmp_path):
    """`make(base_url)`: settings aimed at `base_url` (default: the stand-in), `items` orders."""

    def make(base_url: str | None = None, items: int = ITEMS, **inbound):
        path = write_settings(
            inbound={"base_url": base_url or antavo_standin.url, "mappings": [ORDERS],
                     "buffer_url": f"sqlite:///{tmp_path}/in.db", "max_attempts": 2,
                     "max_retries": 1, "max_in_flight": 1, **inbound},
        )  # fmt: skip
        settings = load_settings(path)
        buffer = InboundBuffer(settings.inbound.buffer_url)
        buffer.add_many(
            [{"type": "track", "event": "Order", "messageId": f"o-{n}", "userId": f"c-{n}"}
             for n in range(items)]
        )  # fmt: skip
        return settings, buffer

    return make


def ingest(settings, run_id: str):
    return factory.inbound_ingest(
        settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir), backoff_base_s=0.01
    ).run(run_id)


def untouched(buffer: InboundBuffer) -> bool:
    """Every item pending, unclaimed, with no attempt used."""
    items = buffer.items(limit=ITEMS + 1)
    return len(items) == ITEMS and {(i.status, i.attempts) for i in items} == {("pending", 0)}


@pytest.mark.parametrize(
    ("faults", "fix"),
    [
        ({"error_rate": 1.0}, "Antavo is unavailable"),
        ({"retry_after_s": 0.01, "fail_next": [429] * 50}, "inbound.rate_limit_per_minute"),
    ],
    ids=["503", "429"],
)
def test_an_outage_leaves_every_item_pending_with_no_attempt_and_the_run_names_the_fix(
    setup, antavo_standin, faults, fix
):
    settings, buffer = setup()
    antavo_standin.configure(**faults)

    for run in ("run-1", "run-2", "run-3"):  # more runs than max_attempts
        with pytest.raises(AntavoFaultError) as raised:
            ingest(settings, run)
        assert fix in str(raised.value) and "pending" in str(raised.value)
        assert raised.value.result.counts.failed == 0 and not raised.value.result.ok
        assert untouched(buffer)

    assert antavo_standin.events == []
    antavo_standin.reset()  # the queued faults go
    antavo_standin.configure(error_rate=0.0)
    assert ingest(settings, "run-4").ok
    assert len(antavo_standin.events) == ITEMS  # each once
    assert buffer.counts()["done"] == ITEMS


def test_an_outage_stops_sending_after_the_first_request_that_exhausted_its_retries(
    setup, antavo_standin
):
    settings, buffer = setup()
    antavo_standin.configure(error_rate=1.0)
    with pytest.raises(AntavoFaultError) as raised:
        ingest(settings, "run-1")
    assert raised.value.result.counts.requests == 2  # one request, one retry; not three
    assert untouched(buffer)


def test_a_base_url_with_a_wrong_path_fails_the_run_naming_inbound_base_url(setup, antavo_standin):
    settings, buffer = setup(f"{antavo_standin.url}/v1")  # 404 "Not Found", not Antavo's error

    with pytest.raises(AntavoFaultError) as raised:
        ingest(settings, "run-1")

    assert "check inbound.base_url (its path)" in str(raised.value)
    assert untouched(buffer) and antavo_standin.events == []


def test_an_antavo_that_cannot_be_reached_fails_the_run_naming_inbound_base_url(setup):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings, buffer = setup(f"http://127.0.0.1:{port}")

    with pytest.raises(AntavoFaultError) as raised:
        ingest(settings, "run-1")

    assert "could not connect to Antavo" in str(raised.value)
    assert "inbound.base_url" in str(raised.value)
    assert untouched(buffer)


@pytest.mark.parametrize("chunk_size", [1, 1000], ids=["404 from /events", "in a bulk answer"])
def test_antavo_refusing_an_event_still_fails_that_item_alone(setup, antavo_standin, chunk_size):
    settings, buffer = setup(items=3, chunk_size=chunk_size)
    antavo_standin.configure(known_customers=["c-1", "c-2"])  # not c-0

    result = ingest(settings, "run-1")

    assert (result.counts.done, result.counts.failed) == (2, 1)
    item = buffer.get_by_message_id("o-0")
    assert (item.status, item.attempts) == ("failed", 1)
    assert "Customer not found" in item.last_error
