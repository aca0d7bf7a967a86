"""The receiver on a full buffer disk: 503 (Segment retries), nothing half-stored,
and the retry after the repair is stored once. Real tmpfs, real SQLite, real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync_tests.disks import break_disk
from segment_sync_tests.inbound.receiver_harness import SECRET, TOKEN, body, event, serve_receiver


def test_a_full_buffer_disk_is_503_and_the_retry_is_stored_once(small_tmpfs: Path) -> None:
    buffer = InboundBuffer(f"sqlite:///{small_tmpfs / 'inbound.db'}")
    buffer.add_many([event(0)])  # the file and its tables exist before the disk breaks
    big = "x" * 100_000  # pages the full disk has no room for
    events = [event(n, properties={"note": big}) for n in range(1, 6)]
    batch, first = body(events), body(events[0])
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Signature": sign(first, SECRET)}
    app = create_receiver_app(buffer, SECRET, webhook_token=TOKEN)
    with serve_receiver(app) as (host, port):
        url = f"http://{host}:{port}/segment"
        repair = break_disk(small_tmpfs, "full")  # (read-only: not while SQLite holds the file)
        refused = httpx.post(url, content=batch, headers=headers, timeout=30)
        stored_while_broken = buffer.message_ids()
        repair()
        retried = httpx.post(url, content=batch, headers=headers, timeout=30)

    assert refused.status_code == 503 and "retry" in refused.json()["error"]
    assert stored_while_broken == {"msg-0"}  # none of the batch, not half of it
    assert retried.status_code == 200
    assert buffer.message_ids() == {f"msg-{n}" for n in range(6)}
    assert buffer.counts()["pending"] == 6
    buffer.close()
