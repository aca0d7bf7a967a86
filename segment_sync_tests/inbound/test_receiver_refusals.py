"""A refused request leaves one line in the receiver's log; a refused write says why and when."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app, store_problem
from segment_sync.inbound.refusal_log import RefusalLog
from segment_sync.inbound.signature import sign
from segment_sync.redaction import Redactor
from segment_sync_tests.inbound.receiver_harness import SECRET, body, event, serve_receiver


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


@pytest.fixture
def client(buffer: InboundBuffer) -> Iterator[httpx.Client]:
    """A receiver with a shared secret (no token), over real HTTP."""
    with serve_receiver(create_receiver_app(buffer, SECRET)) as (host, port):
        c = httpx.Client(base_url=f"http://{host}:{port}", timeout=10)
        with c:
            yield c


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("refused a request")]


def test_a_wrong_signature_is_logged_with_status_peer_and_reason_but_no_signature(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = sign(body(event(1)), "not-the-secret")
    with caplog.at_level(logging.WARNING, logger="segment_sync.inbound.receiver"):
        response = client.post(
            "/segment",
            content=body(event(1)),
            headers={"Content-Type": "application/json", "X-Signature": wrong},
        )
    assert response.status_code == 401
    [line] = refusal_lines(caplog)
    text = line.getMessage()
    assert line.levelno == logging.WARNING
    assert "HTTP 401" in text and "127.0.0.1:" in text and "X-Signature does not match" in text
    assert wrong not in caplog.text and SECRET not in caplog.text


def test_a_batch_refused_for_its_message_id_is_logged_naming_the_index(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    batch = body([event(1), event(2, messageId="m" * 5000)])
    with caplog.at_level(logging.WARNING, logger="segment_sync.inbound.receiver"):
        response = client.post(
            "/segment",
            content=batch,
            headers={
                "Content-Type": "application/json",
                "X-Signature": sign(body(event(1)), SECRET),
            },
        )
    assert response.status_code in (400, 401)  # a signed batch without a token is refused too
    [line] = refusal_lines(caplog)
    assert f"HTTP {response.status_code}" in line.getMessage()


def test_refusals_of_one_status_within_a_second_are_counted_into_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    refusals = RefusalLog(Redactor(["s3cret-value"]), every_s=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="segment_sync.inbound.receiver"):
        for _ in range(50):
            refusals.refused(401, "bad s3cret-value", ("10.0.0.1", 5))
            now[0] += 0.01
        refusals.refused(400, "not JSON", ("10.0.0.2", 6))  # another status has its own line
        now[0] += 1.0
        refusals.refused(401, "bad", ("10.0.0.1", 5))
    lines = [r.getMessage() for r in refusal_lines(caplog)]
    assert len(lines) == 3
    assert "HTTP 401" in lines[0] and "more refused" not in lines[0]
    assert "HTTP 400" in lines[1]
    assert "(49 more refused with 401 since the last such line)" in lines[2]
    assert "s3cret-value" not in caplog.text


def test_a_locked_buffer_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        writer = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError) as raised:
            writer.execute("INSERT INTO t VALUES (1)")
        writer.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    said = store_problem(raised.value)
    assert "database is locked" in said and "write lock longer than its busy timeout" in said


def test_an_unforeseen_store_error_gives_only_its_kind() -> None:
    assert store_problem(sa.exc.IntegrityError("INSERT ... 'payload'", {}, ValueError("x"))) == (
        "IntegrityError (ValueError)"
    )


def test_a_store_failure_answers_503_with_retry_after(
    client: httpx.Client, buffer: InboundBuffer
) -> None:
    with buffer.engine.begin() as conn:  # a real database error on the next insert
        conn.execute(sa.text("DROP TABLE inbound_buffer"))
    response = client.post(
        "/segment",
        content=body(event(1)),
        headers={"Content-Type": "application/json", "X-Signature": sign(body(event(1)), SECRET)},
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
