"""Bounded resources at the receiver's edge, over raw sockets against the real server config.

Timeouts are set to 1 s and a close is awaited for up to 15 s: no upper bound on timing is
asserted beyond "it was closed, not left open".
"""

from __future__ import annotations

import fcntl
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.http_limits import ReceiverLimits
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync_tests.inbound.receiver_harness import (
    SECRET,
    body,
    event,
    read_until_closed,
    serve_receiver,
)

FAST = ReceiverLimits(header_timeout_s=1, body_timeout_s=1, keep_alive_s=1)
MAX_BODY = 64 * 1024


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


def _serve(buffer: InboundBuffer, limits: ReceiverLimits = FAST):
    app = create_receiver_app(buffer, SECRET, MAX_BODY, limits=limits)
    return serve_receiver(app, limits)


def _head(length: int, signature: str = "0" * 40) -> bytes:
    return (
        f"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Signature: {signature}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _signed_post(host: str, port: int) -> httpx.Response:
    payload = body(event(1))
    return httpx.post(
        f"http://{host}:{port}/segment",
        content=payload,
        headers={"X-Signature": sign(payload, SECRET), "Content-Type": "application/json"},
        timeout=10,
    )


def test_stalled_request_headers_are_closed_with_408(buffer: InboundBuffer) -> None:
    with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Le")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_sends_nothing_is_closed(buffer: InboundBuffer) -> None:
    with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_stalled_headers_after_a_first_request_are_closed(buffer: InboundBuffer) -> None:
    with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(15)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"POST /segment HTTP/1.1\r\nHo")  # keep-alive, then a stalled request
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("answered", [1, 2])
def test_stalled_pipelined_headers_wait_for_the_answers_before_them(
    buffer: InboundBuffer, tmp_path: Path, answered: int
) -> None:
    """Requests pipelined while the first is still being stored, the last one stalled: every
    complete request still gets its answer, then the connection gets its 408."""
    requests = b""
    for n in range(1, answered + 1):
        payload = body(event(n))
        requests += _head(len(payload), sign(payload, SECRET)) + payload
    with open(tmp_path / "inbound.db.write-turn", "a+") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)  # another writer's turn: the first request's store waits
        with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
            sock.sendall(requests + b"POST /segment HTTP/1.1\r\nHost: x\r\n")
            time.sleep(3 * FAST.header_timeout_s)  # the stalled headers' clock runs out meanwhile
            fcntl.flock(turn, fcntl.LOCK_UN)
            answer = read_until_closed(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200"] * answered + [b"408"]
    assert answer.endswith(b"request headers were not received in time")
    assert buffer.max_id() == answered


def test_a_busy_keep_alive_connection_outlives_the_header_timeout(buffer: InboundBuffer) -> None:
    """Each request arriving whole in one read, for longer than header_timeout_s in all."""
    limits = ReceiverLimits(header_timeout_s=1, body_timeout_s=1, keep_alive_s=5)
    with _serve(buffer, limits) as (host, port), socket.create_connection((host, port)) as sock:
        sock.settimeout(15)
        answers = _whole_requests_for(sock, 2 * limits.header_timeout_s)
    assert answers == [b"HTTP/1.1 200 OK"] * len(answers)


def _whole_requests_for(sock: socket.socket, seconds: float) -> list[bytes]:
    """Signed single-event requests, each sent whole and answered before the next, 0.2 s
    apart, for `seconds`: each answer's status line."""
    answers = []
    started, n = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        n += 1
        payload = body(event(n))
        sock.sendall(_head(len(payload), sign(payload, SECRET)) + payload)
        answer = b""
        while not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        answers.append(answer.partition(b"\r\n")[0])
        time.sleep(0.2)
    return answers


def test_blank_lines_after_a_request_do_not_hold_the_connection_open(
    buffer: InboundBuffer,
) -> None:
    """A slowloris variant: llhttp skips blank lines before a request line, so they start no
    request; they must still start the header clock."""
    limits = ReceiverLimits(header_timeout_s=1, body_timeout_s=1, keep_alive_s=1)
    with _serve(buffer, limits) as (host, port), socket.create_connection((host, port)) as sock:
        payload = body(event(1))
        sock.sendall(_head(len(payload), sign(payload, SECRET)) + payload)
        sock.settimeout(0.3)
        started, answers, closed = time.monotonic(), b"", False
        while not closed and time.monotonic() - started < 10:
            try:
                sock.sendall(b"\r\n")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset by the server
                break
            answers += chunk
            closed = not chunk
        assert time.monotonic() - started < 10, "blank lines every 0.3 s kept it open for 10 s"
        assert b"HTTP/1.1 408 " in answers or not closed  # a 408 first, unless reset


def test_stalled_body_is_answered_408_and_stores_nothing(buffer: InboundBuffer) -> None:
    payload = body(event(1))
    with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(_head(len(payload), sign(payload, SECRET)) + payload[:10])
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 1 s" in answer
    assert buffer.max_id() == 0


def test_unfinished_headers_beyond_the_size_limit_are_refused(buffer: InboundBuffer) -> None:
    limits = ReceiverLimits(header_timeout_s=30, max_header_bytes=4096)  # size, not time
    with _serve(buffer, limits) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8000)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_unauthenticated_bodies_beyond_the_budget_get_503_then_the_budget_returns(
    buffer: InboundBuffer,
) -> None:
    """Seven stalled 60 KiB bodies cannot all be held: the budget's floor is 5 x 64 KiB."""
    limits = ReceiverLimits(header_timeout_s=5, body_timeout_s=5, max_unverified_bytes=1024)
    with _serve(buffer, limits) as (host, port), ExitStack() as stack:
        socks = [stack.enter_context(socket.create_connection((host, port))) for _ in range(7)]
        for sock in socks:
            sock.sendall(_head(MAX_BODY) + b"x" * 60_000)  # most of a body, then a stall
        answers = [read_until_closed(sock) for sock in socks]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
        assert busy, [a[:40] for a in answers]
        assert all(b"retry-after: 5" in a.lower() for a in busy)
        assert all(a.startswith((b"HTTP/1.1 503 ", b"HTTP/1.1 408 ")) for a in answers)
        assert _signed_post(host, port).status_code == 200  # every hold was given back
    assert buffer.message_ids() == {"msg-1"}


def test_connections_beyond_the_limit_get_503(buffer: InboundBuffer) -> None:
    limits = ReceiverLimits(header_timeout_s=30, max_connections=3)
    with _serve(buffer, limits) as (host, port), ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(socket.create_connection((host, port))).sendall(b"POST /seg")
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 503 ")


def test_complete_headers_beyond_the_size_limit_in_one_read_are_refused(
    buffer: InboundBuffer,
) -> None:
    limits = ReceiverLimits(header_timeout_s=30, max_header_bytes=4096)
    with _serve(buffer, limits) as (host, port), socket.create_connection((host, port)) as sock:
        head = b"POST /segment HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8000 + b"\r\n"
        sock.sendall(head + b"Content-Length: 2\r\n\r\n{}")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert buffer.max_id() == 0


def test_headers_stalled_after_a_busy_spell_longer_than_the_timeout_are_closed(
    buffer: InboundBuffer,
) -> None:
    """The connection's one header timer, having found nothing late while requests came whole,
    still times out the headers of a request that stalls later."""
    limits = ReceiverLimits(header_timeout_s=1, body_timeout_s=1, keep_alive_s=5)
    with _serve(buffer, limits) as (host, port), socket.create_connection((host, port)) as sock:
        sock.settimeout(15)
        answers = _whole_requests_for(sock, 2.5 * limits.header_timeout_s)
        assert answers == [b"HTTP/1.1 200 OK"] * len(answers)  # none closed while whole
        sock.sendall(b"POST /segment HTTP/1.1\r\nHo")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_headers_that_stall_after_late_headers_were_rescued_behind_an_answer_are_closed(
    buffer: InboundBuffer, tmp_path: Path
) -> None:
    """The header clock runs out on pipelined headers while the request before them is still
    being stored; those headers then complete (so they are served). The connection's next
    request stalls in its headers: it must still get its 408, not hold the connection forever."""
    first, second = body(event(1)), body(event(2))
    second_head = _head(len(second), sign(second, SECRET))
    cut = second_head.index(b"\r\n") + 2  # the request line only: headers not complete
    with open(tmp_path / "inbound.db.write-turn", "a+") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)  # another writer's turn: the first request's store waits
        with _serve(buffer) as (host, port), socket.create_connection((host, port)) as sock:
            sock.sendall(_head(len(first), sign(first, SECRET)) + first + second_head[:cut])
            time.sleep(3 * FAST.header_timeout_s)  # the second's clock runs out meanwhile
            sock.sendall(second_head[cut:] + second)  # ...and then its headers complete
            time.sleep(0.5)  # read by the server before the first request is answered
            fcntl.flock(turn, fcntl.LOCK_UN)
            sock.settimeout(15)
            answers = b""
            while answers.count(b"HTTP/1.1 ") < 2 or not answers.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"closed before both answers: {answers!r}"
                answers += chunk
            assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answers) == [b"200", b"200"]
            sock.sendall(b"POST /segment HTTP/1.1\r\nHo")  # the third request stalls
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
