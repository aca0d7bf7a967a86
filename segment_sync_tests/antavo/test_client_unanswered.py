"""A request Antavo may have received but did not answer is never sent again: its events are
`unknown` (Antavo has no idempotency key). Only a request that surely never left is retried."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from segment_sync.antavo.client import unanswered
from segment_sync_tests.antavo.test_client import event, send, standin


def test_a_read_timeout_after_sending_is_unknown_and_not_resent() -> None:
    release = threading.Event()  # Antavo registers, then answers only once the client gave up
    with standin(on_event=lambda *_: release.wait(10)) as (server, url):
        try:
            results, records = send(url, [event(0), event(1)], timeout_s=0.2, max_retries=3)
        finally:
            release.set()
    assert [(r.attempt, r.status_code) for r in records] == [(1, None)]
    assert all(r.unknown and not r.ok and not r.retryable for r in results)
    error = results[0].error or ""
    assert error.startswith("outcome unknown: Antavo sent nothing for the client's 0.2 s read")
    assert "ReadTimeout" in error and "--include-unknown" in error
    assert "base_url" not in error and "stack" not in error
    assert all(e.unknown for e in records[0].events)


@contextmanager
def hang_up_after_reading() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each whole request, then closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                received.append(body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        listener.close()


def test_a_connection_closed_before_the_answer_is_unknown_and_not_resent() -> None:
    with hang_up_after_reading() as (url, received):
        [result], records = send(url, [event(0)], max_retries=3)
    assert len(received) == 1 and [r.attempt for r in records] == [1]
    assert result.unknown and not result.ok and not result.retryable
    assert "RemoteProtocolError" in (result.error or "")
    assert "base_url" not in (result.error or "")


def test_a_refused_connection_is_still_retried() -> None:
    with standin() as (_, url):
        pass  # stopped: its port now refuses connections
    [result], records = send(url, [event(0)], max_retries=2)
    assert [r.attempt for r in records] == [1, 2, 3]
    assert not result.unknown and result.retryable and "inbound.base_url" in (result.error or "")


def test_an_unanswered_error_without_a_cause_or_from_a_deadline_reads_well() -> None:
    # As an overall per-attempt deadline (asyncio.timeout) would report it: TimeoutError, no text.
    timed_out = unanswered(None, TimeoutError, 30.0)
    assert timed_out.startswith(
        "outcome unknown: Antavo did not answer within 60 s (twice the client's 30 s timeout)"
    )
    assert "inbound.timeout_s" not in timed_out  # no such setting
    assert "None" not in timed_out and "None" not in unanswered(None, None, 30.0)
