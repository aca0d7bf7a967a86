"""Shared by the receiver tests: events, bodies, and the receiver served as `serve-webhooks` does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from segment_sync.inbound.http_limits import ReceiverLimits, server_config
from segment_sync.inbound.signature import js_stringify
from segment_sync.standins.server import free_port

SECRET = "s3cret-shared-with-segment"
TOKEN = "bearer-token-in-segment-headers"


def event(n: int, **extra) -> dict:
    """A Segment track event with messageId `msg-<n>`."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n}",
        "messageId": f"msg-{n}",
        "properties": {"revenue": 12.0, "city": "Zürich"},
        **extra,
    }


def body(obj: object) -> bytes:
    """Serialise as Segment does (JSON.stringify)."""
    return js_stringify(obj)


@contextmanager
def serve_receiver(app, limits: ReceiverLimits = ReceiverLimits()) -> Iterator[tuple[str, int]]:  # noqa: B008
    """Serve `app` with the receiver's uvicorn config on loopback; yields (host, port)."""
    host, port = "127.0.0.1", free_port()
    server = uvicorn.Server(
        server_config(app, host, port, limits, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=f"receiver-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"receiver on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        writer = getattr(app.state, "writer", None)
        if writer is not None:
            writer.close()


def read_until_closed(sock: socket.socket, timeout_s: float = 15) -> bytes:
    """Everything the server sends until it closes the connection; fails after `timeout_s`."""
    sock.settimeout(timeout_s)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with our unread bytes still in its buffer
            return received
        if not chunk:
            return received
        received += chunk


def start_receiver_process(
    buffer_url: str, port: int, secret: str | None, *extra_args: str
) -> subprocess.Popen:
    """`segment-sync serve-webhooks` as its own process, on a settings file naming the buffer."""
    settings = Path(buffer_url.removeprefix("sqlite:///")).with_suffix(".yaml")
    settings.write_text(json.dumps({"inbound": {"buffer_url": buffer_url}}))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_WEBHOOK_SECRET"}
    args = [sys.executable, "-m", "segment_sync.cli", "serve-webhooks", "--settings", str(settings)]
    args += ["--host", "127.0.0.1", "--port", str(port), *extra_args]
    if secret is None:
        args.append("--insecure")
    else:
        env["SEGMENT_WEBHOOK_SECRET"] = secret
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("receiver did not start within 30 s")
