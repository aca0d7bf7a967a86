"""A 5xx other than 503 after Antavo registered the events: never sent again, the run stops.

Real ingest, real SQLite buffer, the Antavo stand-in behind a loopback gateway that lets it
register a request's events and then answers the status itself (a gateway timing out, a crash
after the commit)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from segment_sync import factory
from segment_sync.antavo.client import AntavoClient
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest import InboundIngest
from segment_sync.inbound.ingest_result import AntavoFaultError
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.settings import load_settings
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

ORDERS = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"action": {"@literal": "checkout"}, "data": {"mid": {"@path": "$.messageId"}}},
}


def _six_orders(write_settings, tmp_path, url: str) -> tuple:
    """Settings for one request of 2 in flight at a time, and a buffer of 6 orders."""
    path = write_settings(
        inbound={"base_url": url, "mappings": [ORDERS], "max_retries": 5, "chunk_size": 2,
                 "buffer_url": f"sqlite:///{tmp_path}/in.db", "max_in_flight": 1},
    )  # fmt: skip
    settings = load_settings(path)
    buffer = InboundBuffer(settings.inbound.buffer_url)
    buffer.add_many(
        [{"type": "track", "event": "Order", "messageId": f"o-{n}", "userId": f"c-{n}"}
         for n in range(6)]
    )  # fmt: skip
    return settings, buffer


def _gateway(server: AntavoStandin, status: int, bad: list[int]):
    """Passes requests to `server`; the first `bad[0]` are registered, then answered `status`."""

    async def app(scope, receive, send):
        if scope["type"] != "http" or bad[0] <= 0:
            return await server.app(scope, receive, send)
        bad[0] -= 1

        async def swallow(message):
            pass

        await server.app(scope, receive, swallow)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"upstream timed out"})

    return app


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_after_registering_leaves_its_events_unknown_and_stops_the_run(
    write_settings, tmp_path, status
):
    server = AntavoStandin(ANTAVO_KEY, ANTAVO_SECRET, stack="test")
    with serve_in_thread(_gateway(server, status, [1])) as url:
        settings, buffer = _six_orders(write_settings, tmp_path, url)

        def ingest(run_id):
            return factory.inbound_ingest(
                settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir),
                backoff_base_s=0.01,
            ).run(run_id)  # fmt: skip

        with pytest.raises(AntavoFaultError) as raised:
            ingest("run-1")
        message = str(raised.value)
        assert f"Antavo answered HTTP {status} after the request was sent" in message
        assert "--include-unknown" in message and "the rest stays pending" in message
        assert raised.value.result.counts.requests == 1  # not retried, nothing more sent
        assert raised.value.result.counts.unknown == 2
        assert buffer.counts()["unknown"] == 2 and buffer.counts()["pending"] == 4

        result = ingest("run-2")  # the rest goes; the unknown items are not resent
    assert buffer.counts()["unknown"] == 2 and buffer.counts()["done"] == 4
    assert result.counts.requests == 2
    per_event = Counter(e["data"]["mid"] for e in server.events)
    assert per_event == {f"o-{n}": 1 for n in range(6)}, "an event was registered twice"


def _slow_gateway(server: AntavoStandin, bad: list[int]):
    """Passes requests to `server`; the first `bad[0]` are registered, then answered too late."""

    async def app(scope, receive, send):
        if scope["type"] != "http" or bad[0] <= 0:
            return await server.app(scope, receive, send)
        bad[0] -= 1
        replies = []

        async def keep(message):
            replies.append(message)

        await server.app(scope, receive, keep)
        await asyncio.sleep(3)  # far past the client's 0.3 s read timeout
        for message in replies:
            await send(message)

    return app


def test_a_request_sent_and_not_answered_leaves_its_events_unknown_and_stops_the_run(
    write_settings, tmp_path
):
    """Antavo too slow: without the stop, every request of the backlog would end unknown."""
    server = AntavoStandin(ANTAVO_KEY, ANTAVO_SECRET, stack="test")
    with serve_in_thread(_slow_gateway(server, [1])) as url:
        settings, buffer = _six_orders(write_settings, tmp_path, url)

        def ingest(run_id):
            def client(on_request):
                return AntavoClient(
                    settings.inbound.endpoint, ANTAVO_KEY, ANTAVO_SECRET, stack="test",
                    timeout_s=0.3, concurrency=1, on_request=on_request,
                )  # fmt: skip

            return InboundIngest(
                settings, buffer=buffer, client=client, redactor=Redactor([ANTAVO_SECRET]),
                logs=LogWriter(settings.logs.dir),
            ).run(run_id)  # fmt: skip

        with pytest.raises(AntavoFaultError) as raised:
            ingest("run-1")
        message = str(raised.value)
        assert "read timeout after the request was sent" in message, message
        assert "--include-unknown" in message and "the rest stays pending" in message
        assert raised.value.result.counts.requests == 1  # not retried, nothing more sent
        assert buffer.counts()["unknown"] == 2 and buffer.counts()["pending"] == 4

        ingest("run-2")  # the rest goes; the unknown items are not resent
    assert buffer.counts()["unknown"] == 2 and buffer.counts()["done"] == 4
    per_event = Counter(e["data"]["mid"] for e in server.events)
    assert per_event == {f"o-{n}": 1 for n in range(6)}, "an event was registered twice"
