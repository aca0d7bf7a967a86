"""2xx answers that are no success: an `error` of any shape fails its event; an answer that
names no registered event leaves it `unknown` (Antavo may have registered it), never done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.antavo.test_client import API_SECRET, event, send

NOT_FOUND = {"type": "NotFoundException", "code": 160212, "message": "Customer not found"}


@contextmanager
def answering(body: bytes, status: int = 200) -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering every POST with `body`; its URL and the paths it got."""
    paths: list[str] = []

    async def app(scope, receive, send_message) -> None:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        paths.append(scope["path"])
        headers = [(b"content-type", b"application/json")]
        await send_message({"type": "http.response.start", "status": status, "headers": headers})
        await send_message({"type": "http.response.body", "body": body})

    with serve_in_thread(app) as url:
        yield url, paths


def test_a_single_event_answered_200_with_an_error_fails_with_its_message() -> None:
    with answering(orjson.dumps({"error": NOT_FOUND})) as (url, paths):
        [result], records = send(url, [event(0)])
    assert paths == ["/events"] and [r.attempt for r in records] == [1]
    assert (result.ok, result.unknown, result.retryable) == (False, False, False)
    assert result.error == "Customer not found (NotFoundException 160212)"
    assert result.status_code == 404 and result.event_id is None


@pytest.mark.parametrize(
    "body",
    [b"<html>gateway</html>", b"[]", orjson.dumps({"id": "c1", "status": "active"})],
    ids=["not-json", "not-an-object", "no-event-id"],
)
def test_a_single_event_answer_naming_no_event_leaves_it_unknown(body: bytes) -> None:
    with answering(body) as (url, _):
        [result], records = send(url, [event(0)])
    assert [r.attempt for r in records] == [1]
    assert result.unknown and not result.ok and not result.retryable
    assert (result.error or "").startswith("outcome unknown: Antavo's HTTP 200 answer")


def test_bulk_results_that_are_no_success_fail_or_stay_unknown() -> None:
    results = [
        {"events": [{"id": "e1", "action": "point_add"}]},
        {"error": "Customer not found"},
        {},
        {"error": NOT_FOUND},
        {"events": []},
        {"error": NOT_FOUND, "events": [{"id": "e6"}]},
    ]
    answer = orjson.dumps({"results": results, "total": 6, "errors": 4})
    with answering(answer) as (url, paths):
        got, records = send(url, [event(n) for n in range(6)])
    assert paths == ["/events/bulk"] and [r.attempt for r in records] == [1]
    assert [(r.ok, r.unknown) for r in got] == [
        (True, False),
        (False, False),
        (False, True),
        (False, False),
        (False, True),
        (False, True),
    ]
    assert got[0].event_id == "e1"
    assert got[1].error == "Customer not found" and not got[1].retryable
    assert got[3].error == "Customer not found (NotFoundException 160212)"
    assert all(not r.retryable for r in got)
    assert [e.unknown for e in records[0].events] == [r.unknown for r in got]


@pytest.mark.parametrize("status", [200, 400], ids=["event-error", "request-error"])
def test_an_error_quoting_the_secret_is_masked_in_results_and_records(status: int) -> None:
    """Antavo's error text is redacted before it reaches a result or a record."""
    said = {"type": "BadRequestException", "code": 1, "message": f"bad {API_SECRET}"}
    ok = {"events": [{"id": "e1", "action": "point_add"}]}
    body = {"results": [{"error": said}, ok]} if status == 200 else {"error": said}
    with answering(orjson.dumps(body), status) as (url, _):
        results, records = send(url, [event(0), event(1)])
    texts = [r.error for r in results] + [e.error for r in records for e in r.events]
    texts += [r.error for r in records]
    assert any("bad [REDACTED]" in (t or "") for t in texts)
    assert not [t for t in texts if API_SECRET in (t or "")]
