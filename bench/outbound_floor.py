"""The floor of the outbound job: the naive serial script, and ours with no logging.

The floor is what the same job costs when done plainly on this machine, one step after the
other on one core: read the SQLite rows, build each Track message with orjson, cut requests at
500,000 bytes or 2,500 messages, gzip (level 1, as ours), POST over one keep-alive connection,
no logs, no progress, no retries. Its messages carry the same messageIds as ours, so the
stand-in counts them the same way.
"""

from __future__ import annotations

import os
import time
import zlib
from datetime import UTC, datetime
from typing import Any

MAX_REQUEST_BYTES = 500_000
MAX_MESSAGES = 2500


def child_floor(cfg: dict[str, Any], write_key: str) -> dict[str, Any]:
    """The naive serial script over the store; timed from the first read to the last answer."""
    import sqlite3

    import httpx
    import orjson

    context = {"library": {"name": "segment-sync-floor", "version": "0"}}
    con = sqlite3.connect(cfg["store_url"].removeprefix("sqlite:///"))
    http = httpx.Client(
        base_url=cfg["endpoint"],
        auth=(write_key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=30,
    )
    statuses: dict[int, int] = {}

    def post(batch: list[bytes]) -> None:
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = b'{"batch":[' + b",".join(batch) + b'],"sentAt":"' + sent_at.encode() + b'"}'
        status = http.post("/v1/batch", content=zlib.compress(body, 1, 31)).status_code
        statuses[status] = statuses.get(status, 0) + 1

    envelope = len(b'{"batch":[],"sentAt":"0000-00-00T00:00:00.000Z"}')
    started, cpu = time.perf_counter(), time.process_time()
    batch: list[bytes] = []
    size = envelope
    rows = con.execute(
        "SELECT id, customer_id, action, data, occurred_at FROM loyalty_events ORDER BY id"
    )
    for row_id, customer, action, data, occurred_at in rows:
        at = datetime.fromisoformat(occurred_at).replace(tzinfo=UTC)
        message = orjson.dumps(
            {
                "type": "track",
                "event": action,
                "userId": customer,
                "properties": orjson.loads(data),
                "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "messageId": f"ss-evt-{row_id}-{int(at.timestamp() * 1000):x}",
                "context": context,
            }
        )
        if batch and (len(batch) == MAX_MESSAGES or size + len(message) + 1 > MAX_REQUEST_BYTES):
            post(batch)
            batch, size = [], envelope
        batch.append(message)
        size += len(message) + 1
    if batch:
        post(batch)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    http.close()
    con.close()
    return {"elapsed_s": elapsed, "run_cpu_s": cpu, "statuses": statuses, "pid": os.getpid()}


def no_logs_writer() -> type:
    """A LogWriter that keeps nothing: ours, the same job, with no logging."""
    from segment_sync.logs.store import LogWriter

    class NoLogs(LogWriter):
        def extend(self, table: str, rows: Any) -> None:
            pass

        def extend_columns(self, table: str, columns: Any) -> None:
            pass

        def flush(self, table: str | None = None) -> list:
            return []

    return NoLogs
