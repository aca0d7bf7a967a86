"""Buffer leases, release, take-over and replay on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import inbound_buffer
from segment_sync.inbound.lease import LeaseHeartbeat


def _event(n: int, **extra) -> dict:
    return {"type": "track", "event": "Order Completed", "messageId": f"m-{n}", **extra}


@pytest.fixture(params=["sqlite", "postgresql"])
def buffer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InboundBuffer]:
    url = (
        f"sqlite:///{tmp_path / 'inbound.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    buf = InboundBuffer(url)
    yield buf
    buf.close()


def _age_claims(buffer: InboundBuffer, seconds: float) -> None:
    with buffer.engine.begin() as conn:
        conn.execute(
            sa.update(inbound_buffer).values(
                claimed_at=datetime.now(UTC) - timedelta(seconds=seconds)
            )
        )


def test_renew_keeps_a_live_runs_claims_from_being_taken_over(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1), _event(2)])
    buffer.claim("alive", limit=10, max_attempts=3)
    _age_claims(buffer, 60)
    assert buffer.renew("alive") == 2
    assert buffer.claim("other", limit=10, max_attempts=3, stale_after_s=30) == []
    assert buffer.held_elsewhere("other") == 2


def test_renew_skips_a_row_the_run_is_marking_instead_of_waiting_for_it(pg_url) -> None:
    """A heartbeat renew waiting on a mark's row lock, in another order, deadlocked with it."""
    buffer = InboundBuffer(pg_url)
    try:
        buffer.add_many([_event(n) for n in range(3)])
        first, *rest = buffer.claim("alive", limit=10, max_attempts=3)
        t = inbound_buffer.c
        renewed: list[int] = []
        with buffer.engine.begin() as marking:  # a mark in flight holds this row's lock
            marking.execute(
                sa.update(inbound_buffer).where(t.id == first.id).values(last_error="x")
            )
            beat = threading.Thread(target=lambda: renewed.append(buffer.renew("alive")))
            beat.start()
            beat.join(20)
            waiting = beat.is_alive()
        beat.join()
        assert not waiting, "renew waited for the row being marked"
        assert renewed == [len(rest)]
        assert buffer.renew("alive") == 3  # the next beat renews it
    finally:
        buffer.close()


def test_a_stalled_run_keeps_its_claims_through_the_heartbeat_thread(
    buffer: InboundBuffer,
) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("stalled", limit=10, max_attempts=3)
    with LeaseHeartbeat(buffer, "stalled", lease_s=3):
        _age_claims(buffer, 10)  # as if the lease had lapsed long ago
        aged = buffer.get(item.id).claimed_at
        deadline = time.monotonic() + 30
        # The run's own thread does nothing (stalled); only the heartbeat thread can renew.
        while buffer.get(item.id).claimed_at == aged:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.1)
        assert buffer.claim("other", limit=10, max_attempts=3, stale_after_s=3) == []


def test_release_returns_unfinished_items_untouched_and_takeover_skips_own_retries(
    buffer: InboundBuffer,
) -> None:
    buffer.add_many([_event(1), _event(2), _event(3)])
    a, b, c = buffer.claim("dead", limit=10, max_attempts=3)
    buffer.mark_many(retry=[(a.id, "HTTP 500")], max_attempts=3)  # waits for a retry, unclaimed
    assert buffer.release("finished") == 0
    assert buffer.held_elsewhere("next") == 2
    _age_claims(buffer, 60)
    taken = buffer.claim("next", limit=10, max_attempts=3, stale_after_s=30, only_claimed=True)
    assert [i.id for i in taken] == [b.id, c.id]
    assert buffer.release("next") == 2
    assert [(r.status, r.attempts, r.claimed_by) for r in buffer.items()] == [
        ("pending", 1, None),
        ("pending", 0, None),
        ("pending", 0, None),
    ]


def test_a_late_retry_never_reopens_an_item_another_run_finished(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("slow", limit=10, max_attempts=3)
    buffer.mark_many(done=[(item.id, ["e1"])])  # the run that took over delivered it
    buffer.mark_many(retry=[(item.id, "timeout")], max_attempts=3)
    buffer.mark_many(failed=[(item.id, "HTTP 400")])
    assert buffer.get(item.id).status == "done"


def test_requeue_failed_matches_error_or_payload_substring_and_failure_time(
    buffer: InboundBuffer,
) -> None:
    buffer.add_many([_event(1, userId="Ann_1"), _event(2), _event(3), _event(4)])
    one, two, three, four = buffer.claim("r", limit=10, max_attempts=5)
    buffer.mark_many(
        failed=[(one.id, "x"), (two.id, "HTTP 401: Invalid API signature"), (three.id, "y")],
        done=[(four.id, [])],
    )
    assert buffer.requeue_failed("ann_") == 1  # payload, case-insensitive, `_` is literal
    assert buffer.requeue_failed("api SIGNATURE") == 1  # last error
    assert buffer.requeue_failed(until=datetime.now(UTC) - timedelta(hours=1)) == 0
    assert buffer.requeue_failed(since=datetime.now(UTC) - timedelta(hours=1)) == 1
    assert buffer.requeue_failed() == 0
    records = buffer.items()
    assert [(r.status, r.attempts) for r in records] == [
        ("pending", 0),
        ("pending", 0),
        ("pending", 0),
        ("done", 1),
    ]
