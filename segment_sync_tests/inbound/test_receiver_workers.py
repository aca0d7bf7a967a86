"""`serve-webhooks --workers 2`: two processes on one port, a dead worker replaced, a clean stop."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.signature import js_stringify
from segment_sync.standins.server import free_port
from segment_sync_tests.inbound.receiver_harness import event, start_receiver_process


def _workers(proc: subprocess.Popen, count: int, timeout_s: float = 30) -> list[int]:
    """The receiver's worker pids once there are `count` of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = sorted(child.pid for child in psutil.Process(proc.pid).children())
        if len(pids) == count or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def _send(url: str, first: int, count: int, threads: int = 4) -> set[str]:
    """POST events msg-<first>.. as single requests, each twice; the messageIds answered 200."""
    acked: set[str] = set()
    lock = threading.Lock()

    def worker(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for n in range(first + offset, first + count, threads):
                for _ in range(2):  # a resend, possibly to the other worker
                    response = client.post("/segment", content=js_stringify(event(n)))
                    if response.status_code == 200:
                        with lock:
                            acked.add(f"msg-{n}")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    return acked


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """`serve-webhooks --workers 2 --insecure` on a SQLite buffer: (process, URL, buffer URL)."""
    buffer_url = f"sqlite:///{tmp_path / 'inbound.db'}"
    port = free_port()
    proc = start_receiver_process(buffer_url, port, None, "--workers", "2")
    yield proc, f"http://127.0.0.1:{port}", buffer_url
    if proc.poll() is None:
        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.kill()
        proc.wait(10)


def _stored(buffer_url: str) -> list[str]:
    buffer = InboundBuffer(buffer_url)
    try:
        return [item.message_id for item in buffer.items(limit=100_000)]
    finally:
        buffer.close()


def test_two_workers_serve_the_port_and_store_each_resent_event_once(receiver) -> None:
    proc, url, buffer_url = receiver
    assert len(_workers(proc, 2)) == 2
    acked = _send(url, 0, 200)
    assert len(acked) == 200
    stored = _stored(buffer_url)
    assert sorted(stored) == sorted(acked)  # each sent twice, stored once


def test_a_killed_worker_is_replaced_and_nothing_acknowledged_is_lost(receiver) -> None:
    proc, url, buffer_url = receiver
    first, second = _workers(proc, 2)
    acked = _send(url, 0, 100)
    psutil.Process(first).kill()  # SIGKILL: no chance to finish anything
    replaced = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replaced = _workers(proc, 2, timeout_s=0.5)
        if len(replaced) == 2 and first not in replaced:
            break
    assert second in replaced and first not in replaced and len(replaced) == 2
    acked |= _send(url, 100, 100)
    assert len(acked) == 200
    assert set(_stored(buffer_url)) == acked


def test_sigterm_stops_every_worker_after_it_commits(receiver) -> None:
    proc, url, buffer_url = receiver
    workers = _workers(proc, 2)
    acked = _send(url, 0, 100)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    assert not [pid for pid in workers if psutil.pid_exists(pid) and _alive(pid)]
    assert set(_stored(buffer_url)) == acked


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
