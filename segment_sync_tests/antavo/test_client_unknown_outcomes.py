"""An Antavo bulk answer that does not account for every event leaves their outcome unknown:
neither delivered, nor failed, nor retried (a resend could register them twice)."""

from __future__ import annotations

import pytest

from segment_sync_tests.antavo.test_client import event, send, standin


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
