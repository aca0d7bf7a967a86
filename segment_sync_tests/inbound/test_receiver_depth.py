"""The receiver's edge: a nesting limit checked on the bytes before anything walks or verifies the
body, and a client that leaves mid-body costing one log line. Real uvicorn on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync.standins.server import free_port
from segment_sync_tests.inbound.receiver_harness import SECRET, body, event, serve_receiver

DEEP = 300


def nested_event(levels: int, n: int = 1, message_id: bool = False) -> bytes:
    """A track event whose properties nest `levels` objects (the event itself is one more)."""
    head = b'{"type":"track","event":"Order Completed","userId":"c-1",'
    if message_id:
        head += b'"messageId":"deep-%d",' % n
    return head + b'"properties":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


def _post(server: tuple[str, int], payload: bytes, signature: str | None) -> httpx.Response:
    host, port = server
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return httpx.post(f"http://{host}:{port}/segment", content=payload, headers=headers, timeout=30)


DEEP_SINGLE = nested_event(DEEP)
DEEP_BATCH = b"[" + nested_event(DEEP) + b"," + body(event(2)) + b"]"
CASES = {
    "forged signature": ({"webhook_secret": SECRET}, DEEP_SINGLE, "f" * 40),
    "valid signature": ({"webhook_secret": SECRET}, DEEP_SINGLE, sign(DEEP_SINGLE, SECRET)),
    "--insecure": ({"webhook_secret": None}, DEEP_SINGLE, None),
    "unverified batch": (
        {"webhook_secret": SECRET, "allow_unverified_batches": True},
        DEEP_BATCH,
        sign(body(event(2)), SECRET),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_body_nested_300_deep_is_a_400_naming_the_limit_and_stores_nothing(buffer, case):
    options, payload, signature = CASES[case]
    with serve_receiver(create_receiver_app(buffer, **options)) as server:
        response = _post(server, payload, signature)
    assert response.status_code == 400, response.text
    assert "more than 64 levels deep" in response.json()["error"]
    assert buffer.max_id() == 0


def test_the_depth_is_refused_before_the_signature_is_checked(buffer):
    """A forged signature on a deep body is a 400, not a 401: no verification work was done."""
    with serve_receiver(create_receiver_app(buffer, SECRET)) as server:
        response = _post(server, nested_event(65), "0" * 40)
    assert response.status_code == 400


def test_events_of_exactly_64_levels_are_accepted_alone_and_in_a_batch(buffer):
    single = nested_event(63, 1, message_id=True)  # 63 in properties + the event = 64
    batch = b"[" + nested_event(63, 2, message_id=True) + b"," + single + b"]"
    app = create_receiver_app(buffer, SECRET, allow_unverified_batches=True)
    with serve_receiver(app) as server:
        alone = _post(server, single, sign(single, SECRET))
        together = _post(server, batch, sign(nested_event(63, 2, message_id=True), SECRET))
    assert alone.status_code == 200, alone.text
    assert together.status_code == 200, together.text
    assert buffer.message_ids() == {"deep-1", "deep-2"}
    stored = buffer.get_by_message_id("deep-1")
    assert stored.payload == orjson.loads(single)


def test_one_level_more_than_64_is_refused(buffer):
    with serve_receiver(create_receiver_app(buffer, None)) as server:
        response = _post(server, nested_event(64), None)
    assert response.status_code == 400
    assert buffer.max_id() == 0


# -- a client that disconnects mid-body ------------------------------------------------------


def _start(tmp_path: Path, port: int, log: Path) -> subprocess.Popen:
    """`segment-sync serve-webhooks --insecure`, its stderr (the server's log) going to `log`."""
    settings = tmp_path / "receiver.yaml"
    buffer_url = f"sqlite:///{tmp_path / 'inbound.db'}"
    settings.write_text(orjson.dumps({"inbound": {"buffer_url": buffer_url}}).decode())
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_WEBHOOK_SECRET"}
    args = [sys.executable, "-m", "segment_sync.cli", "serve-webhooks", "--settings"]
    args += [str(settings), "--host", "127.0.0.1", "--port", str(port), "--insecure"]
    with open(log, "wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"receiver did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def _send_half_and_close(port: int) -> None:
    whole = body(event(1))
    head = (
        b"POST /segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(whole)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + whole[: len(whole) // 2])


def test_a_client_that_disconnects_mid_body_is_one_short_log_line(tmp_path):
    port, log = free_port(), tmp_path / "receiver.log"
    proc = _start(tmp_path, port, log)
    try:
        _send_half_and_close(port)
        deadline = time.monotonic() + 60  # a safety net, not a speed target
        while b"disconnected mid-body" not in log.read_bytes():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        after = httpx.post(f"http://127.0.0.1:{port}/segment", content=body(event(2)), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text()
    assert after.status_code == 200  # the receiver serves on
    lines = [line for line in text.splitlines() if "disconnected mid-body" in line]
    assert len(lines) == 1 and len(lines[0]) < 200, text
    assert "127.0.0.1:" in lines[0] and "nothing stored" in lines[0]
    assert "Traceback" not in text and "ClientDisconnect" not in text, text
    assert "ERROR" not in text and "Exception in ASGI application" not in text, text
