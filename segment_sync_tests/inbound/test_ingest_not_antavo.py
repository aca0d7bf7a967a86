"""A wrong inbound.base_url that answers neither 404 nor 405: a redirect, or a 2xx page that is
not Antavo's JSON. Neither is spread over the backlog: the run stops after the first answer.
Real ingest, real SQLite buffer, a loopback server that is not Antavo."""

from __future__ import annotations

import pytest

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest_result import AntavoFaultError
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

ORDERS = {"name": "Orders", "action": "loyalty_event", "trigger": 'type = "track"',
          "fields": {"action": {"@literal": "checkout"}}}  # fmt: skip
ITEMS = 200  # four requests of 50


def _run(
    write_settings,
    tmp_path,
    status: int,
    headers: list,
    events: int = ITEMS,
    page: bytes = b"<html>not antavo</html>",
):
    """One run against a server answering every request `status` with `page`."""
    requests: list[str] = []

    async def app(scope, receive, send):
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        requests.append(scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": page})

    with serve_in_thread(app) as url:
        path = write_settings(inbound={"base_url": url, "mappings": [ORDERS], "max_in_flight": 1,
                                       "buffer_url": f"sqlite:///{tmp_path}/in.db"})  # fmt: skip
        settings = load_settings(path)
        buffer = InboundBuffer(settings.inbound.buffer_url)
        buffer.add_many([{"type": "track", "event": "O", "messageId": f"o-{n}", "userId": f"c{n}"}
                         for n in range(events)])  # fmt: skip
        with pytest.raises(AntavoFaultError) as raised:
            factory.inbound_ingest(
                settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir)
            ).run("run-1")
    return raised.value, requests, buffer


def test_a_redirect_leaves_every_item_pending_and_names_base_url(write_settings, tmp_path):
    error, requests, buffer = _run(
        write_settings, tmp_path, 301, [(b"location", b"https://elsewhere/events/bulk")]
    )
    assert "inbound.base_url" in str(error) and "HTTP 301" in str(error)
    assert len(requests) == 1
    assert buffer.counts()["pending"] == ITEMS
    assert {i.attempts for i in buffer.items(limit=ITEMS + 1)} == {0}


def test_a_2xx_page_leaves_its_request_unknown_and_stops_the_run(write_settings, tmp_path):
    error, requests, buffer = _run(write_settings, tmp_path, 200, [])
    assert "inbound.base_url" in str(error) and "not Antavo's JSON answer" in str(error)
    assert "--include-unknown" in str(error)
    assert len(requests) == 1
    assert buffer.counts()["unknown"] == 50  # that request's events may have registered
    assert buffer.counts()["pending"] == ITEMS - 50


def test_a_2xx_json_object_without_results_stops_the_run_too(write_settings, tmp_path):
    """A catch-all answering JSON: every request would make its events unknown (review)."""
    error, requests, buffer = _run(write_settings, tmp_path, 200, [], page=b'{"status": "ok"}')
    assert "inbound.base_url" in str(error) and "--include-unknown" in str(error)
    assert len(requests) == 1
    assert buffer.counts()["unknown"] == 50
    assert buffer.counts()["pending"] == ITEMS - 50
