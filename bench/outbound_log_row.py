"""A request body's log row against sending it: CPU per body, the real code on real bodies.

Target (issue 26): a request body's `outbound_log` row must not cost more than sending it.
The bodies are those an in-process run of ours sent (read back from its log, not timed).
- sending: `SegmentClient.send` (gzip level 1 in its thread, the POST over one keep-alive
  connection to the stand-in, the answer read), one body after the other;
- its log row: `request_row` (redaction, the row's columns) and the durable Parquet write,
  eleven rows a flush as a 20,000-row chunk makes them.
Process CPU (all threads) per body, each side measured alone (set-up not counted), best of
three.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

ROWS_PER_FLUSH = 11  # a 20,000-event chunk is ~11 requests of 500 KB


def child_log_row(cfg: dict[str, Any], write_key: str) -> dict[str, Any]:
    """CPU per body of sending it and of writing its log row."""
    import pyarrow as pa

    from segment_sync.logs.store import LogWriter
    from segment_sync.logs.views import connect
    from segment_sync.loyalty.records import Stream
    from segment_sync.native_memory import bound_native_memory
    from segment_sync.outbound.outcomes import request_row
    from segment_sync.redaction import Redactor
    from segment_sync.segment.client import Attempt, SegmentClient
    from segment_sync.segment.message_columns import MessageColumns
    from segment_sync.settings import parse_settings

    bound_native_memory()  # the sync's allocator settings
    con = connect(cfg["logs_dir"])
    bodies = [
        b.encode()
        for (b,) in con.execute(
            "SELECT request_body FROM outbound_log ORDER BY timestamp LIMIT ?", [cfg["bodies"]]
        ).fetchall()
    ]
    customers = con.execute("SELECT customer_ids FROM outbound_log LIMIT 1").fetchone()[0]
    con.close()
    settings = parse_settings({"outbound": {"base_url": cfg["endpoint"]}})
    redactor = Redactor([write_key, *settings.secrets()])
    n = len(customers)
    group = MessageColumns(
        "track",
        *[pa.array(customers)] * 3,
        pa.array(customers),
        pa.array([b"{}," for _ in customers], pa.large_binary()),
        pa.array(range(n), pa.int64()),
    )
    attempt = Attempt("id", 1, datetime.now(UTC), 200, 0.001, None, '{"success":true}')

    async def send() -> float:
        """CPU of the sends alone (the client, its TLS context and connection made first)."""
        client = SegmentClient(settings.outbound.endpoint, write_key)
        try:
            await client.send(bodies[0])
            cpu = time.process_time()
            for body in bodies:
                await client.send(body)
            return time.process_time() - cpu
        finally:
            await client.aclose()

    def log() -> float:
        with tempfile.TemporaryDirectory() as logs_dir:
            logs = LogWriter(logs_dir, durable=True)
            cpu = time.process_time()
            for index, body in enumerate(bodies, 1):
                row = request_row(attempt, group, body, Stream.EVENTS, "r", settings, redactor)
                logs.extend("outbound_log", [row])
                if index % ROWS_PER_FLUSH == 0:
                    logs.flush()
            logs.flush()
            return time.process_time() - cpu

    return {
        "bodies": len(bodies),
        "body_bytes": sum(map(len, bodies)) // max(len(bodies), 1),
        "send_cpu_s": min(asyncio.run(send()) for _ in range(3)) / len(bodies),
        "log_row_cpu_s": min(log() for _ in range(3)) / len(bodies),
    }
