"""`segment-sync serve-webhooks` as a real process: the token and read timeouts come from settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.inbound.signature import sign
from segment_sync.standins.server import free_port
from segment_sync_tests.conftest import WEBHOOK_SECRET
from segment_sync_tests.inbound.receiver_harness import TOKEN, body, event, read_until_closed

TOKEN_ENV = "SEGMENT_WEBHOOK_TOKEN"


@contextmanager
def serve_webhooks(path: Path) -> Iterator[str]:
    """`segment-sync serve-webhooks --settings path` in a child process; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "segment_sync.cli", "serve-webhooks", "--settings", str(path)]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "serve-webhooks did not start within 30 s"
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def receiver(write_settings, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """`serve-webhooks` with a token and 1 s read timeouts; yields its URL."""
    monkeypatch.setenv("SEGMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    path = write_settings(
        inbound={
            "buffer_url": f"sqlite:///{tmp_path}/in.db",
            "webhook_token_env": TOKEN_ENV,
            "read_timeout_s": 1,
        }
    )
    with serve_webhooks(path) as url:
        yield url


def test_a_wrong_signature_names_the_secret_variable_the_settings_chose(
    write_settings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("SEGMENT_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("LOYALTY_HOOK_SECRET", WEBHOOK_SECRET)
    path = write_settings(
        inbound={
            "buffer_url": f"sqlite:///{tmp_path}/in.db",
            "webhook_secret_env": "LOYALTY_HOOK_SECRET",
        }
    )
    with serve_webhooks(path) as url:
        unsigned = httpx.post(f"{url}/segment", content=body(event(1)))
        forged = httpx.post(
            f"{url}/segment", content=body(event(1)), headers={"X-Signature": "0" * 40}
        )
    for answer in (unsigned, forged):
        assert answer.status_code == 401
        assert "LOYALTY_HOOK_SECRET" in answer.json()["error"]
        assert "SEGMENT_WEBHOOK_SECRET" not in answer.json()["error"]


def test_serve_webhooks_requires_the_token_from_settings(receiver: str) -> None:
    batch = [event(1), event(2)]
    headers = {"X-Signature": sign(body(batch[0]), WEBHOOK_SECRET)}
    refused = httpx.post(f"{receiver}/segment", content=body(batch), headers=headers)
    assert refused.status_code == 401 and "Authorization" in refused.json()["error"]
    headers["Authorization"] = f"Bearer {TOKEN}"
    accepted = httpx.post(f"{receiver}/segment", content=body(batch), headers=headers)
    assert accepted.status_code == 200, accepted.text


def test_serve_webhooks_answers_a_stalled_body_408_after_read_timeout_s(receiver: str) -> None:
    host, port = receiver.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST /segment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "X-Signature: 00\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"within 1 s" in answer


def test_serve_webhooks_refuses_to_start_when_the_token_variable_is_unset(
    write_settings, monkeypatch
) -> None:
    monkeypatch.setenv("SEGMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    path = write_settings(inbound={"webhook_token_env": TOKEN_ENV})
    result = CliRunner().invoke(main, ["serve-webhooks", "--settings", str(path)])
    assert result.exit_code == 1
    assert f"export {TOKEN_ENV}=" in result.output and "Traceback" not in result.output
