"""The Antavo client against the Antavo stand-in over real loopback HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple
from typing import Any

import pytest

from segment_sync.loyalty.antavo_client import AntavoClient, AntavoRequestRecord, EventResult
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.server import free_port, serve_in_thread

API_KEY = "ak_client_0123456789"
API_SECRET = "secret-client-abcdefghij"
STACK = "test"
FAST_BACKOFF = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05}


@contextmanager
def standin(**kwargs: Any) -> Iterator[tuple[AntavoStandin, str]]:
    """An Antavo stand-in on loopback and its base URL."""
    server = AntavoStandin(API_KEY, API_SECRET, stack=STACK, **kwargs)
    with serve_in_thread(server.app) as base_url:
        yield server, base_url


def send(
    base_url: str, events: list[dict], *, secret: str = API_SECRET, **kwargs: Any
) -> tuple[list[EventResult], list[AntavoRequestRecord]]:
    """Send events with a fresh client; the results and every request record."""
    records: list[AntavoRequestRecord] = []

    async def go() -> list[EventResult]:
        options = {**FAST_BACKOFF, **kwargs}
        async with AntavoClient(
            base_url, API_KEY, secret, stack=STACK, on_request=records.append, **options
        ) as client:
            return await client.send_events(events)

    return asyncio.run(go()), records


def event(n: int, customer: str = "c1", action: str = "point_add") -> dict:
    """An event carrying its position in `data.seq`."""
    return {"customer": customer, "action": action, "data": {"seq": n, "points": 10}}


def test_signed_requests_are_accepted() -> None:
    with standin() as (server, url):
        [result], [record] = send(url, [event(0)])
        assert result.ok and result.error is None and not result.retryable
        assert re.fullmatch(r"[0-9a-f]{24}", result.event_id or "")
        assert (record.path, record.status_code, record.attempt, record.event_count) == (
            "/events",
            200,
            1,
            1,
        )
        assert result.identifier == record.identifier
        assert server.events == [{"id": result.event_id, **event(0)}]


def test_wrong_secret_gets_401_for_all_events_and_is_not_retried() -> None:
    with standin() as (server, url):
        results, records = send(url, [event(0), event(1)], secret="wrong-secret-value")
        assert [r.status_code for r in records] == [401]
        assert all(not r.ok and not r.retryable and r.status_code == 401 for r in results)
        assert all("UnauthorizedException" in (r.error or "") for r in results)
        assert server.events == []


def test_bulk_splits_at_50_and_keeps_input_order() -> None:
    events = [event(n, customer=f"c{n % 7}") for n in range(101)]
    with standin() as (server, url):
        results, records = send(url, events, concurrency=3)
        assert sorted((r.path, r.event_count) for r in records) == [
            ("/events", 1),
            ("/events/bulk", 50),
            ("/events/bulk", 50),
        ]
        assert [r.index for r in results] == list(range(101))
        assert all(r.ok for r in results)
        seq_by_id = {e["id"]: e["data"]["seq"] for e in server.events}
        assert [seq_by_id[r.event_id] for r in results] == list(range(101))


def test_customer_not_found_fails_only_that_event_and_is_not_retried() -> None:
    events = [event(0, "c1"), event(1, "ghost"), event(2, "c2")]
    with standin(known_customers={"c1", "c2"}) as (server, url):
        results, records = send(url, events)
        assert [r.attempt for r in records] == [1]
        assert [r.ok for r in results] == [True, False, True]
        missing = results[1]
        assert not missing.retryable and missing.event_id is None
        assert "Customer not found" in (missing.error or "")
        assert len(server.events) == 2


def test_single_event_for_unknown_customer_fails_with_antavo_message() -> None:
    with standin(known_customers=set()) as (_, url):
        [result], records = send(url, [event(0, "ghost")])
        assert [r.status_code for r in records] == [404]
        assert (result.ok, result.retryable, result.status_code) == (False, False, 404)
        assert "Customer not found (NotFoundException 160212)" in (result.error or "")


def test_server_errors_are_retried_then_succeed() -> None:
    with standin() as (server, url):
        server.configure(fail_next=[500, 503])
        [result], records = send(url, [event(0)])
        assert [(r.attempt, r.status_code) for r in records] == [(1, 500), (2, 503), (3, 200)]
        assert result.ok and result.identifier == records[-1].identifier
        assert len(server.events) == 1


def test_429_is_retried_after_retry_after_then_succeeds() -> None:
    with standin() as (server, url):
        server.configure(fail_next=[429], retry_after_s=0.3)
        [result], records = send(url, [event(0)])
        assert [(r.attempt, r.status_code) for r in records] == [(1, 429), (2, 200)]
        waited = (records[1].started_at - records[0].started_at).total_seconds()
        assert waited >= 0.3
        assert result.ok


def test_exhausted_retries_give_a_retryable_failure() -> None:
    with standin(error_rate=1.0, seed=3) as (server, url):
        results, records = send(url, [event(0), event(1)], max_retries=2)
        assert [r.attempt for r in records] == [1, 2, 3]
        assert all(r.status_code in (500, 503) for r in records)
        assert all(not r.ok and r.retryable and r.status_code in (500, 503) for r in results)
        assert server.events == []


def test_network_errors_are_retried_then_give_a_retryable_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    [result], records = send(url, [event(0)], max_retries=1)
    assert [(r.attempt, r.status_code) for r in records] == [(1, None), (2, None)]
    assert all(r.error and r.response_body is None for r in records)
    assert not result.ok and result.retryable and result.status_code is None


def test_unserialisable_event_fails_alone_without_being_sent() -> None:
    with standin() as (server, url):
        results, records = send(url, [event(0), {"customer": "c1", "data": {1j}}])
        assert [r.event_count for r in records] == [1]
        assert results[0].ok
        assert not results[1].ok and not results[1].retryable
        assert len(server.events) == 1


def test_secrets_never_appear_in_records_results_or_exceptions() -> None:
    leaks = (API_KEY, API_SECRET, "ANTAVO-HMAC", "Signature=", "Credential=")
    events = [event(0), {**event(1), "data": {"note": f"pasted {API_SECRET} by mistake"}}]
    with standin() as (_, url):
        ok_results, ok_records = send(url, events)
        bad_results, bad_records = send(url, events[:1], secret=API_SECRET[::-1])
    dead_results, dead_records = send(f"http://127.0.0.1:{free_port()}", events, max_retries=0)
    texts = [
        str(value)
        for item in (*ok_results, *ok_records, *bad_results, *bad_records)
        for value in astuple(item)
    ]
    texts += [str(value) for item in (*dead_results, *dead_records) for value in astuple(item)]
    assert not [t for t in texts if any(leak in t for leak in leaks)]
    assert "[REDACTED]" in ok_records[0].request_body
    client = AntavoClient("http://127.0.0.1:1", API_KEY, API_SECRET, stack=STACK)
    assert API_KEY not in repr(client) and API_SECRET not in repr(client)
    asyncio.run(client.aclose())
    with pytest.raises(ValueError) as raised:
        AntavoClient("http://127.0.0.1:1", "bad key!" + API_SECRET, API_SECRET, stack=STACK)
    assert API_SECRET not in str(raised.value)


@pytest.mark.slow
def test_client_rate_limiter_keeps_600_per_minute_without_any_429() -> None:
    # 40 bulk requests; the stand-in allows 30 per sliding 3 s (600/min), so bursts would 429.
    events = [event(n, customer=f"c{n}") for n in range(40 * 50)]
    with standin(rate_limit_per_minute=600, rate_limit_window_s=3.0) as (server, url):
        started = time.monotonic()
        results, records = send(url, events, rate_limit_per_minute=600, concurrency=8)
        elapsed = time.monotonic() - started
    assert len(records) == 40
    assert [r.status_code for r in records] == [200] * 40
    assert server.stats()["rate_limited"] == 0
    assert all(r.ok for r in results)
    assert elapsed >= 39 * 0.1


def test_without_client_pacing_the_same_stand_in_answers_429() -> None:
    events = [event(n, customer=f"c{n}") for n in range(40 * 50)]
    with standin(rate_limit_per_minute=600, rate_limit_window_s=3.0) as (server, url):
        _, records = send(url, events, rate_limit_per_minute=1_000_000, max_retries=0)
    assert 429 in [r.status_code for r in records]
    assert server.stats()["rate_limited"] > 0
