"""A buffer that cannot record Antavo's answers stops the sending: at most the requests in
flight are answered but unmarked (the next run sends them again). A real SQLite buffer whose
marks fail as a locked or full database does, the Antavo stand-in over loopback."""

from __future__ import annotations

import sqlite3

import pytest

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest_result import BufferMarkError
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders

ITEMS = 3000
MAX_IN_FLIGHT = 8
IN_FLIGHT_BOUND = MAX_IN_FLIGHT * 50  # Antavo's bulk limit: 50 events a request


class MarksFail(InboundBuffer):
    """A real buffer whose marks raise what SQLite raises when the database is locked."""

    def mark_many(self, **marks) -> None:
        raise sqlite3.OperationalError("database is locked")


def test_a_failed_buffer_mark_stops_sending_within_the_requests_in_flight(
    write_settings, antavo_standin, tmp_path
):
    buffer_url = f"sqlite:///{tmp_path}/inbound.db"
    path = write_settings(
        inbound={
            "base_url": antavo_standin.url,
            "buffer_url": buffer_url,
            "mappings": [CHECKOUT],
            "chunk_size": 1000,
            "max_in_flight": MAX_IN_FLIGHT,
        }
    )
    settings = load_settings(path)
    InboundBuffer(buffer_url).add_many(orders(ITEMS))
    ingest = factory.inbound_ingest(
        settings,
        ANTAVO_KEY,
        ANTAVO_SECRET,
        LogWriter(settings.logs.dir),
        buffer=MarksFail(buffer_url),
    )

    with pytest.raises(BufferMarkError, match=r"inbound\.buffer_url\): OperationalError") as stop:
        ingest.run("run-1")

    assert 0 < len(antavo_standin.events) <= IN_FLIGHT_BOUND  # was 2,000 with claims ahead
    assert "o-" not in str(stop.value)  # the error names the problem, never payload data
    assert InboundBuffer(buffer_url).counts() == {
        "pending": ITEMS,
        "done": 0,
        "failed": 0,
        "unknown": 0,
    }
