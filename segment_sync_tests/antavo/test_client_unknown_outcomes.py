"""An Antavo bulk answer that does not account for every event leaves their outcome unknown:
neither delivered, nor failed, nor retried (a resend could register them twice)."""

from __future__ import annotations

import pytest

from segment_sync_tests.antavo.test_client import event, send, standin
from segment_sync_tests.odd_answers import answering, dripping


@pytest.mark.parametrize("fault", ["one_short", "malformed"])
def test_an_ambiguous_bulk_answer_makes_every_event_of_the_request_unknown(fault) -> None:
    with standin() as (server, url):
        server.configure(bulk_answer_faults=[fault])
        results, records = send(url, [event(n) for n in range(50)])
    assert len(server.events) == 50  # Antavo did register them
    assert [r.attempt for r in records] == [1]  # not retried
    assert all(r.unknown and not r.ok and not r.retryable for r in results)
    assert all(
        (r.error or "").startswith("outcome unknown: Antavo's HTTP 200 answer") for r in results
    )
    assert all(e.unknown for e in records[0].events)


def test_a_whole_answer_leaves_no_event_unknown() -> None:
    with standin() as (_, url):
        results, _ = send(url, [event(n) for n in range(50)])
    assert all(r.ok and not r.unknown for r in results)


@pytest.mark.parametrize("path_events", [1, 3], ids=["events", "bulk"])
def test_a_2xx_answer_over_the_body_cap_leaves_every_event_unknown(path_events) -> None:
    """What Antavo said of each event was not read: it may have registered them."""
    with answering(200, b'{"results": [' + b" " * (2 << 20) + b"]}") as url:
        results, records = send(url, [event(n) for n in range(path_events)])
    assert [r.attempt for r in records] == [1]  # not retried
    assert all(r.unknown and not r.ok and not r.retryable for r in results)
    assert all("over the 1,048,576-byte limit" in (r.error or "") for r in results)


def test_an_answer_dripped_past_the_deadline_leaves_the_events_unknown_never_resent() -> None:
    """The request was sent: Antavo may have registered its events (no idempotency key)."""
    with dripping(b'{"results": []}' + b" " * 25, every_s=0.15) as url:
        results, records = send(url, [event(0), event(1)], max_retries=1, timeout_s=0.5)
    assert [r.attempt for r in records] == [1] and all(r.status_code is None for r in records)
    assert all(r.unknown and not r.retryable for r in results)
    assert all("outcome unknown: Antavo did not answer" in (r.error or "") for r in results)
