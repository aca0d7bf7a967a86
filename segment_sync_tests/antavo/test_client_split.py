"""A bulk request Antavo refuses as a whole (413: nothing registered) is narrowed by resending
its halves, so the one event at fault fails alone and the others are registered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from segment_sync.antavo.client import MAX_SPLIT_REQUESTS
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.antavo.test_client import API_KEY, API_SECRET, STACK, event, send

TOO_LARGE = orjson.dumps(
    {"error": {"type": "PayloadTooLarge", "code": 413, "message": "Too large"}}
)


@contextmanager
def body_limit(limit: int) -> Iterator[tuple[AntavoStandin, str]]:
    """The Antavo stand-in behind a gateway refusing bodies over `limit` bytes with 413."""
    server = AntavoStandin(API_KEY, API_SECRET, stack=STACK)

    async def gateway(scope, receive, send_message) -> None:
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if len(body) <= limit:
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if replayed:
                    return {"type": "http.disconnect"}
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await server.app(scope, replay, send_message)
        headers = [(b"content-type", b"application/json")]
        await send_message({"type": "http.response.start", "status": 413, "headers": headers})
        await send_message({"type": "http.response.body", "body": TOO_LARGE})

    with serve_in_thread(gateway) as url:
        yield server, url


def test_one_oversized_event_fails_alone_and_the_others_are_registered() -> None:
    events = [event(n) for n in range(10)]
    events[4]["data"]["blob"] = "x" * 20_000
    with body_limit(10_000) as (server, url):
        results, records = send(url, events)
    assert [r.ok for r in results] == [n != 4 for n in range(10)]
    assert sorted(e["data"]["seq"] for e in server.events) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    big = results[4]
    assert big.status_code == 413 and not big.retryable and not big.unknown
    assert "Too large" in (big.error or "")
    assert records[0].status_code == 413 and records[0].event_count == 10


def test_a_gateway_refusing_every_request_costs_a_bounded_number_of_requests() -> None:
    with body_limit(10) as (server, url):
        results, records = send(url, [event(n) for n in range(50)])
    assert len(records) == 1 + MAX_SPLIT_REQUESTS
    assert all(not r.ok and r.status_code == 413 and not r.retryable for r in results)
    assert server.events == []


def test_a_split_stops_when_antavo_fails_a_half_and_the_rest_waits() -> None:
    """400 to the whole, then a 500 to the first half (Antavo may have registered it): the other
    half is not narrowed further, and its events carry the fault, so their items wait (review)."""
    server = AntavoStandin(API_KEY, API_SECRET, stack=STACK)
    answers = iter([400, 500])

    async def gateway(scope, receive, send_message) -> None:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        status = next(answers, 400)
        body = orjson.dumps({"error": {"type": "Bad", "code": status, "message": "refused"}})
        headers = [(b"content-type", b"application/json")]
        await send_message({"type": "http.response.start", "status": status, "headers": headers})
        await send_message({"type": "http.response.body", "body": body})

    with serve_in_thread(gateway) as url:
        results, records = send(url, [event(n) for n in range(50)])
    assert [r.status_code for r in records] == [400, 500, 400]
    halves = [results[:25], results[25:]]  # sent at once: either may meet the 500
    unsure = [h for h in halves if all(r.unknown for r in h)]
    waiting = [h for h in halves if all(not r.ok and not r.unknown for r in h)]
    assert len(unsure) == 1 and len(waiting) == 1
    assert all(r.fault == "unsure" for r in results)
    assert server.events == []
