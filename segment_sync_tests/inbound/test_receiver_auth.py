"""Batch authentication: a bearer token checked before the body, and batches refused without it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync_tests.inbound.receiver_harness import (
    SECRET,
    TOKEN,
    body,
    event,
    read_until_closed,
    serve_receiver,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


def _serve(buffer: InboundBuffer, **options):
    return serve_receiver(create_receiver_app(buffer, SECRET, **options))


def _post(host_port: tuple[str, int], payload: bytes, signature: str, **headers) -> httpx.Response:
    host, port = host_port
    headers = {"Content-Type": "application/json", "X-Signature": signature, **headers}
    return httpx.post(f"http://{host}:{port}/segment", content=payload, headers=headers, timeout=10)


def _forged_batch() -> tuple[bytes, str]:
    """[signed_event, forged_event] carrying the signed event's X-Signature."""
    signed, forged = event(1), event(2, userId="attacker", properties={"total": 999999})
    return body([signed, forged]), sign(body(signed), SECRET)


def test_forged_batch_without_a_token_is_401_saying_why_and_stores_nothing(
    buffer: InboundBuffer,
) -> None:
    payload, signature = _forged_batch()
    with _serve(buffer) as server:
        response = _post(server, payload, signature)
    assert response.status_code == 401
    error = response.json()["error"]
    assert "covers only the first event" in error
    assert "Authorization: Bearer" in error and "batch size" in error
    assert buffer.max_id() == 0


def test_batch_is_accepted_with_the_bearer_token(buffer: InboundBuffer) -> None:
    batch = [event(1), event(2)]
    with _serve(buffer, webhook_token=TOKEN) as server:
        response = _post(server, body(batch), sign(body(batch[0]), SECRET), **AUTH)
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1", "msg-2"}


def test_batch_without_a_token_is_accepted_when_unverified_batches_are_allowed(
    buffer: InboundBuffer,
) -> None:
    payload, signature = _forged_batch()
    with _serve(buffer, allow_unverified_batches=True) as server:
        response = _post(server, payload, signature)
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1", "msg-2"}


def test_single_signed_event_is_accepted_without_a_token(buffer: InboundBuffer) -> None:
    for payload in (body(event(1)), body([event(2)])):  # an object, and a batch of one
        with _serve(buffer) as server:
            first = event(1) if payload.startswith(b"{") else event(2)
            response = _post(server, payload, sign(body(first), SECRET))
        assert response.status_code == 200, response.text
    assert buffer.message_ids() == {"msg-1", "msg-2"}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_missing_or_wrong_token_is_401_naming_the_header_and_stores_nothing(
    buffer: InboundBuffer, authorization: str | None
) -> None:
    payload = body(event(1))
    headers = {} if authorization is None else {"Authorization": authorization}
    with _serve(buffer, webhook_token=TOKEN) as server:
        response = _post(server, payload, sign(payload, SECRET), **headers)
    assert response.status_code == 401
    assert "Authorization header" in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert buffer.max_id() == 0


def test_single_event_with_the_token_still_needs_its_signature(buffer: InboundBuffer) -> None:
    payload = body(event(1))
    with _serve(buffer, webhook_token=TOKEN) as server:
        response = _post(server, payload, sign(payload, "another-secret"), **AUTH)
    assert response.status_code == 401
    assert "X-Signature does not match" in response.json()["error"]
    assert buffer.max_id() == 0


def test_wrong_token_is_answered_before_the_body_is_sent(buffer: InboundBuffer) -> None:
    with (
        _serve(buffer, webhook_token=TOKEN) as (host, port),
        socket.create_connection((host, port), timeout=15) as sock,
    ):
        sock.sendall(
            b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer wrong\r\nContent-Length: 5000000\r\n\r\n"
        )
        answer = read_until_closed(sock)  # no body byte was sent
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"connection: close" in answer.lower()  # the unread body is not waited for
    assert buffer.max_id() == 0
