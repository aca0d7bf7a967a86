"""The receiver's floor: the same job done plainly, as a yardstick for `bench/inbound.py`.

    python -m bench.inbound_floor --db PATH --host 127.0.0.1 --port N

A minimal Starlette endpoint, served by uvicorn in its own process (httptools, uvloop, no access
log), doing what our receiver must do and nothing else:

- `Authorization: Bearer` compared with SEGMENT_WEBHOOK_TOKEN (as ours does when a token is set);
- the same HMAC check: `segment_sync.inbound.signature.verify` (`X-Signature` = hex HMAC-SHA1 of
  the body for one event; of `JSON.stringify(first event)` for a batch), secret from
  SEGMENT_WEBHOOK_SECRET;
- the same durability: SQLite in WAL mode with synchronous=FULL, one row per event (messageId
  UNIQUE, duplicates ignored and counted, payload, received_at, status with its index, as the
  buffer has), group commit: one writer task takes every request waiting, inserts them in one
  transaction on one connection (in a thread, so the loop keeps reading requests), commits, and
  only then answers each request `{"stored": n, "duplicates": d}`.

No size or time limits, no memory budget, no depth check, no per-request error isolation: those
are what ours adds on top, and what the ratio ours/floor prices.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import sqlite3
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.inbound.signature import verify

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, "
    "received_at TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending')",
    "CREATE INDEX IF NOT EXISTS ix_events_status_id ON events (status, id)",
)
INSERT = "INSERT OR IGNORE INTO events (message_id, received_at, payload) VALUES (?, ?, ?)"
Rows = list[tuple[str, str, str]]


def connect(path: Path) -> sqlite3.Connection:
    """A durable connection: WAL, synchronous=FULL, explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in SCHEMA:
        conn.execute(statement)
    return conn


def commit_group(conn: sqlite3.Connection, groups: list[Rows]) -> list[int]:
    """Insert every request's rows in one transaction; rows stored per request."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        stored = [conn.executemany(INSERT, rows).rowcount for rows in groups]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return stored


class Writer:
    """One task that commits all waiting requests together, then answers each."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[tuple[Rows, asyncio.Future[int]]] = asyncio.Queue()

    async def store(self, rows: Rows) -> int:
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((rows, future))
        return await future

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            while not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            try:
                stored = await asyncio.to_thread(commit_group, self.conn, [r for r, _ in jobs])
            except Exception as exc:
                for _, future in jobs:
                    future.set_exception(exc)
                continue
            for (_, future), n in zip(jobs, stored, strict=True):
                future.set_result(n)


def _answer(status: int, body: dict) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(db: Path, secret: str, token: str) -> Starlette:
    conn = connect(db)
    writer = Writer(conn)
    expected = f"Bearer {token}".encode()

    async def segment(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _answer(401, {"error": "wrong Authorization"})
        body = await request.body()
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _answer(400, {"error": "not JSON"})
        if not verify(body, parsed, request.headers.get("x-signature"), secret):
            return _answer(401, {"error": "wrong X-Signature"})
        events = parsed if isinstance(parsed, list) else [parsed]
        now = datetime.now(UTC).isoformat()
        try:
            rows = [(e["messageId"], now, orjson.dumps(e).decode()) for e in events]
        except (KeyError, TypeError):
            return _answer(400, {"error": "an event without messageId"})
        try:
            stored = await writer.store(rows)
        except sqlite3.Error:
            return _answer(503, {"error": "not stored"})
        return _answer(200, {"stored": stored, "duplicates": len(rows) - stored})

    async def healthz(_request: Request) -> Response:
        return _answer(200, {"status": "ok"})

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        task = asyncio.create_task(writer.run())
        yield
        task.cancel()
        conn.close()

    return Starlette(
        routes=[
            Route("/segment", segment, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def stored_message_ids(db: Path) -> list[str]:
    """Every messageId the floor committed (read after its process has stopped)."""
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT message_id FROM events")]
    finally:
        conn.close()


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    app = create_app(
        args.db, os.environ["SEGMENT_WEBHOOK_SECRET"], os.environ["SEGMENT_WEBHOOK_TOKEN"]
    )
    uvicorn.run(
        app, host=args.host, port=args.port, http="httptools", loop="uvloop", access_log=False
    )


if __name__ == "__main__":
    main()
