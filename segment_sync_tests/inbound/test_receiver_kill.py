"""Kill the receiver process mid-load: every event it acknowledged must be in the buffer."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.signature import js_stringify, sign
from segment_sync.standins.server import free_port
from segment_sync_tests.inbound.receiver_harness import start_receiver_process

SECRET = "kill-test-secret"
LOAD_SECONDS = 2.0
KILL_AFTER_SECONDS = 1.2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["insecure", "signed"])
def test_every_acknowledged_event_survives_sigkill(tmp_path: Path, mode: str) -> None:
    buffer_url = f"sqlite:///{tmp_path / 'inbound.db'}"
    port = free_port()
    secret = SECRET if mode == "signed" else None
    proc = start_receiver_process(buffer_url, port, secret)
    acked: set[str] = set()
    rejected: set[str] = set()
    lock = threading.Lock()
    counter = itertools.count()
    stop_at = time.monotonic() + LOAD_SECONDS

    def load(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < stop_at:
                n = next(counter)
                size = 1 if n % 3 else 1 + n % 25
                events = [
                    {"type": "track", "event": "Kill Test", "messageId": f"w{worker}-{n}-{i}"}
                    for i in range(size)
                ]
                body = js_stringify(events[0] if size == 1 else events)
                headers = {"Content-Type": "application/json"}
                tamper = secret is not None and n % 5 == 0  # some unsigned: must be refused
                if secret is not None and not tamper:
                    headers["X-Signature"] = sign(js_stringify(events[0]), secret)
                try:
                    response = client.post("/segment", content=body, headers=headers)
                except httpx.HTTPError:
                    time.sleep(0.01)  # killed, or killed mid-request: outcome unknown
                    continue
                ids = {e["messageId"] for e in events}
                with lock:
                    if 200 <= response.status_code < 300:
                        acked.update(ids)
                    elif 400 <= response.status_code < 500:
                        rejected.update(ids)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(KILL_AFTER_SECONDS)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)

    assert proc.returncode == -signal.SIGKILL
    assert acked, "no request was acknowledged before the kill"
    buffer = InboundBuffer(buffer_url)
    stored = buffer.message_ids()
    buffer.close()
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    if secret is not None:
        assert rejected, "no unsigned request was refused"
        assert not (rejected & stored), "a refused request was stored"
