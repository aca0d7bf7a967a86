"""The durable inbound buffer on real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import inbound_buffer, message_id_of


def _event(n: int, **extra) -> dict:
    return {"type": "track", "event": "Order Completed", "messageId": f"m-{n}", **extra}


@pytest.fixture(params=["sqlite", "postgresql"])
def buffer_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh buffer database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inbound.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def buffer(buffer_url: str) -> Iterator[InboundBuffer]:
    """An empty buffer."""
    buf = InboundBuffer(buffer_url)
    yield buf
    buf.close()


def test_add_many_stores_each_event_with_its_received_payload(buffer: InboundBuffer) -> None:
    events = [_event(1, properties={"revenue": 1.0, "name": "café"}), _event(2)]
    assert buffer.add_many(events) == (2, 0)
    records = buffer.items()
    assert [r.message_id for r in records] == ["m-1", "m-2"]
    assert records[0].payload == events[0]
    assert records[0].status == "pending" and records[0].attempts == 0
    assert records[0].received_at.tzinfo is not None
    assert abs(records[0].received_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_add_many_stores_a_duplicate_message_id_once(buffer: InboundBuffer) -> None:
    assert buffer.add_many([_event(1), _event(2), _event(1)]) == (2, 1)
    assert buffer.add_many([_event(2), _event(3)]) == (1, 1)
    assert buffer.counts()["pending"] == 3


def test_event_without_message_id_gets_a_deterministic_sha1_id(buffer: InboundBuffer) -> None:
    event = {"type": "identify", "userId": "u1", "traits": {"score": 2.0}}
    assert buffer.add_many([event]) == (1, 0)
    assert buffer.add_many([dict(event)]) == (0, 1)
    [record] = buffer.items()
    assert record.message_id == message_id_of(event)
    assert record.message_id.startswith("sha1:") and len(record.message_id) == 45


def test_add_row_groups_counts_each_request_separately(buffer: InboundBuffer) -> None:
    result = buffer.add_row_groups(
        [[("a", "{}"), ("b", "{}")], [("b", "{}"), ("c", "{}")], [("a", "{}")]]
    )
    assert result == [(2, 0), (1, 1), (0, 1)]
    assert buffer.message_ids() == {"a", "b", "c"}


def test_max_id_pending_count_and_counts_answer_cheap_questions(buffer: InboundBuffer) -> None:
    assert buffer.max_id() == 0
    assert buffer.pending_count() == 0
    buffer.add_many([_event(n) for n in range(5)])
    assert buffer.max_id() == max(r.id for r in buffer.items())
    assert buffer.pending_count() == 5
    assert buffer.counts() == {"pending": 5, "done": 0, "failed": 0, "unknown": 0}


def test_claim_returns_pending_items_in_id_order_and_marks_them(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(n) for n in range(5)])
    items = buffer.claim("run-1", limit=3, max_attempts=3)
    assert [i.message_id for i in items] == ["m-0", "m-1", "m-2"]
    assert items[0].payload == _event(0) and items[0].attempts == 0
    assert {buffer.get(i.id).claimed_by for i in items} == {"run-1"}
    again = buffer.claim("run-2", limit=10, max_attempts=3)
    assert [i.message_id for i in again] == ["m-3", "m-4"]


def test_claim_up_to_id_leaves_later_items(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(n) for n in range(4)])
    second_id = buffer.items()[1].id
    items = buffer.claim("run-1", limit=10, max_attempts=3, up_to_id=second_id)
    assert [i.message_id for i in items] == ["m-0", "m-1"]


def test_mark_done_records_antavo_event_ids(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("run-1", limit=10, max_attempts=3)
    buffer.mark_done(item.id, ["antavo-1", "antavo-2"])
    record = buffer.get(item.id)
    assert record.status == "done"
    assert record.antavo_event_ids == ["antavo-1", "antavo-2"]
    assert buffer.claim("run-2", limit=10, max_attempts=3) == []


def test_mark_done_after_a_retry_counts_the_attempt_and_clears_the_last_error(
    buffer: InboundBuffer,
) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("run-1", limit=10, max_attempts=3)
    buffer.mark_retry(item.id, "HTTP 503 from Antavo", max_attempts=3)
    [again] = buffer.claim("run-2", limit=10, max_attempts=3)
    before = buffer.get(item.id).updated_at
    buffer.mark_many(done=[(again.id, ["antavo-1"])])
    record = buffer.get(item.id)
    assert (record.status, record.attempts, record.last_error) == ("done", 2, None)
    assert record.updated_at >= before


def test_mark_retry_returns_item_to_pending_until_max_attempts_then_failed(
    buffer: InboundBuffer,
) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("run-1", limit=10, max_attempts=2)
    assert buffer.mark_retry(item.id, "HTTP 503 from Antavo", max_attempts=2) == "pending"
    record = buffer.get(item.id)
    assert (record.attempts, record.last_error, record.claimed_by) == (
        1,
        "HTTP 503 from Antavo",
        None,
    )
    [again] = buffer.claim("run-2", limit=10, max_attempts=2)
    assert again.attempts == 1
    assert buffer.mark_retry(again.id, "HTTP 503 again", max_attempts=2) == "failed"
    assert buffer.get(item.id).status == "failed"
    assert buffer.claim("run-3", limit=10, max_attempts=2) == []


def test_mark_failed_is_permanent_and_keeps_the_error(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("run-1", limit=10, max_attempts=5)
    buffer.mark_failed(item.id, "customer not found")
    record = buffer.get(item.id)
    assert (record.status, record.attempts, record.last_error) == (
        "failed",
        1,
        "customer not found",
    )
    assert buffer.claim("run-2", limit=10, max_attempts=5) == []
    assert buffer.counts() == {"pending": 0, "done": 0, "failed": 1, "unknown": 0}


def test_items_that_reached_max_attempts_are_not_claimed(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("run-1", limit=10, max_attempts=5)
    assert buffer.mark_retry(item.id, "timeout", max_attempts=5) == "pending"
    assert buffer.claim("run-2", limit=10, max_attempts=1) == []


def test_mark_many_records_a_chunk_in_one_call(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(n) for n in range(4)])
    a, b, c, d = buffer.claim("run-1", limit=10, max_attempts=3)
    statuses = buffer.mark_many(
        done=[(a.id, ["e1"]), (b.id, [])],
        retry=[(c.id, "HTTP 429")],
        failed=[(d.id, "missing action")],
        max_attempts=3,
    )
    assert statuses == {a.id: "done", b.id: "done", c.id: "pending", d.id: "failed"}
    assert buffer.counts() == {"pending": 1, "done": 2, "failed": 1, "unknown": 0}
    buffer.mark_many_done([(c.id, ["e3"])])
    assert buffer.get(c.id).antavo_event_ids == ["e3"]


def test_stale_claims_are_claimable_again(buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1)])
    [item] = buffer.claim("crashed-run", limit=10, max_attempts=3)
    assert buffer.claim("run-2", limit=10, max_attempts=3, stale_after_s=600) == []
    with buffer.engine.begin() as conn:
        conn.execute(
            sa.update(inbound_buffer).values(claimed_at=datetime.now(UTC) - timedelta(hours=1))
        )
    [again] = buffer.claim("run-2", limit=10, max_attempts=3, stale_after_s=600)
    assert again.id == item.id
    assert buffer.get(item.id).claimed_by == "run-2"


def test_two_concurrent_claimers_never_get_the_same_item(buffer_url: str) -> None:
    seed = InboundBuffer(buffer_url)
    total = 600
    seed.add_many([_event(n) for n in range(total)])
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(run_id: str) -> None:
        buf = InboundBuffer(buffer_url)
        mine: list[int] = []
        try:
            start.wait()
            while batch := buf.claim(run_id, limit=7, max_attempts=3):
                mine.extend(item.id for item in batch)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            claimed[run_id] = mine
            buf.close()

    threads = [threading.Thread(target=claimer, args=(f"run-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == total
    owners = {r.id: r.claimed_by for r in seed.items(limit=total)}
    for run_id, ids in claimed.items():
        assert all(owners[i] == run_id for i in ids)
    seed.close()


def test_opening_an_existing_buffer_keeps_its_items(buffer_url: str) -> None:
    first = InboundBuffer(buffer_url)
    first.add_many([_event(1)])
    first.close()
    second = InboundBuffer(buffer_url)
    assert second.message_ids() == {"m-1"}
    second.close()
