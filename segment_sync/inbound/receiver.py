"""Webhook receiver for Segment's "Webhooks (Actions)" destination: verify, store durably, answer.

`POST /segment` takes one event (a JSON object) or a batch (a JSON array of objects). A request is
answered 200 only after its events are committed to the inbound buffer; a rejected request (bad
JSON, wrong signature, oversize body) gets a 4xx naming the problem and stores nothing.

Concurrent requests are committed together (group commit): one writer thread takes every request
waiting in its queue, stores them in one transaction, and only then answers each of them. With
durable SQLite (synchronous=FULL) a commit costs an fsync, so this is what keeps single-event
requests fast; a request whose group fails is retried on its own, so one bad request cannot fail
its neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import queue
import threading
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.inbound.buffer import InboundBuffer, Row, rows_for
from segment_sync.inbound.signature import verify

log = logging.getLogger(__name__)

SECRET_ENV_VAR = "SEGMENT_WEBHOOK_SECRET"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
GROUP_MAX_ROWS = 20_000


class _Rejected(Exception):
    """A request refused with an HTTP status and a message saying what to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, body: dict) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@dataclass
class _Job:
    rows: list[Row]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future, result: tuple[int, int] | None, error: BaseException | None):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitWriter:
    """A thread that stores concurrent requests' rows in one transaction, then answers each."""

    def __init__(self, buffer: InboundBuffer, max_rows: int = GROUP_MAX_ROWS) -> None:
        """Writer for `buffer`; a group holds up to `max_rows` rows (more if one request is bigger)."""
        self.buffer = buffer
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the receiver's writer is closed")
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="inbound-group-commit", daemon=True
                    )
                    self._thread.start()

    async def store(self, rows: list[Row]) -> tuple[int, int]:
        """Queue rows for the next group commit; returns (stored, duplicates) once committed."""
        if self._closed:
            raise RuntimeError("the receiver's writer is closed")
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(rows, future, loop))
        return await future

    def close(self, timeout: float = 10) -> None:
        """Finish queued work and stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            group = [job]
            size = len(job.rows)
            while size < self.max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += len(nxt.rows)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        try:
            results = self.buffer.add_row_groups([job.rows for job in group])
        except Exception as exc:  # answered per request below
            if len(group) == 1:
                log.warning("storing %d inbound events failed: %s", len(group[0].rows), exc)
                self._answer(group[0], None, exc)
                return
            for job in group:  # isolate the request that made the group fail
                self._commit([job])
            return
        for job, result in zip(group, results, strict=True):
            self._answer(job, result, None)

    @staticmethod
    def _answer(job: _Job, result: tuple[int, int] | None, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is gone; nobody waits any more
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)


async def _read_body(request: Request, max_body_bytes: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds `max_body_bytes`."""
    too_big = _Rejected(
        413,
        f"request body is larger than {max_body_bytes} bytes: lower the batch size in Segment's "
        "Webhooks (Actions) mapping, or raise the receiver's max body size",
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise _Rejected(400, "Content-Length is not a number") from None
        if length > max_body_bytes:
            raise too_big
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_body_bytes:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise _Rejected(415, f"Content-Encoding {encoding!r} is not supported: send gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_body_bytes + 1)
    except zlib.error as exc:
        raise _Rejected(
            400, f"body is not valid gzip ({exc}): send it gzip-compressed or plain"
        ) from None
    if len(data) > max_body_bytes or inflater.unconsumed_tail:
        raise too_big
    if not inflater.eof:
        raise _Rejected(400, "gzip body is truncated: send the complete compressed body")
    return data


def _parse(body: bytes) -> tuple[object, list[dict], list[str] | None]:
    """(parsed JSON, events, received payload texts or None) or a 400 saying what is wrong."""
    if not body:
        raise _Rejected(
            400, "body is empty: send one Segment event as a JSON object or a JSON array"
        )
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Rejected(
            400,
            f"body is not valid JSON ({exc}): send one Segment event as a JSON object, "
            "or a batch as a JSON array of objects, UTF-8 encoded",
        ) from None
    if isinstance(parsed, dict):
        return parsed, [parsed], [body.decode("utf-8")]
    if isinstance(parsed, list):
        if not parsed:
            raise _Rejected(400, "batch is an empty JSON array: send at least one event object")
        for index, event in enumerate(parsed):
            if not isinstance(event, dict):
                kind = "null" if event is None else type(event).__name__
                raise _Rejected(
                    400,
                    f"batch item at index {index} is a JSON {kind}, not an object: "
                    "every item of a batch must be one Segment event object",
                )
        return parsed, parsed, None
    raise _Rejected(
        400,
        f"body is a JSON {type(parsed).__name__}: send one Segment event as a JSON object, "
        "or a batch as a JSON array of objects",
    )


def create_receiver_app(
    buffer: InboundBuffer,
    webhook_secret: str | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    *,
    group_commit: bool = True,
) -> Starlette:
    """The receiver as an ASGI app: `POST /segment` stores events, `GET /healthz` reports."""
    writer = GroupCommitWriter(buffer) if group_commit else None

    async def store(events: list[dict], payloads: list[str] | None) -> tuple[int, int]:
        rows = rows_for(events, payloads)
        if writer is not None:
            return await writer.store(rows)
        return (await run_in_threadpool(buffer.add_row_groups, [rows]))[0]

    async def segment(request: Request) -> Response:
        try:
            signature = request.headers.get("x-signature")
            if webhook_secret and not signature:
                raise _Rejected(
                    401,
                    "missing X-Signature header: set the shared secret in Segment's "
                    f"Webhooks (Actions) settings to the receiver's {SECRET_ENV_VAR}",
                )
            body = await _read_body(request, max_body_bytes)
            parsed, events, payloads = _parse(body)
            if webhook_secret and not verify(body, parsed, signature, webhook_secret):
                raise _Rejected(
                    401,
                    "X-Signature does not match the body: the shared secret in Segment's "
                    f"Webhooks (Actions) settings must equal the receiver's {SECRET_ENV_VAR}",
                )
        except _Rejected as rejected:
            return _json(rejected.status, {"error": rejected.message})
        try:
            stored, duplicates = await store(events, payloads)
        except Exception:  # Segment retries 5xx
            log.exception("could not store %d inbound events", len(events))
            return _json(
                503, {"error": "the events could not be stored and were not accepted; retry later"}
            )
        return _json(200, {"stored": stored, "duplicates": duplicates})

    async def healthz(_request: Request) -> Response:
        pending = await run_in_threadpool(buffer.pending_count)
        return _json(200, {"status": "ok", "pending": pending})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if writer is not None:
            await run_in_threadpool(writer.close)

    app = Starlette(
        routes=[
            Route("/segment", segment, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.buffer = buffer
    app.state.writer = writer
    return app


def run_receiver(
    buffer_url: str,
    webhook_secret: str | None,
    host: str = "127.0.0.1",
    port: int = 8787,
    insecure: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serve the receiver with uvicorn; refuses to start unsigned unless `insecure` is set."""
    if not webhook_secret and not insecure:
        raise SystemExit(
            f"refusing to start the webhook receiver without a shared secret: set {SECRET_ENV_VAR} "
            "to the shared secret configured in Segment's Webhooks (Actions) destination, "
            "or pass --insecure to accept unsigned requests (local testing only)"
        )
    if not webhook_secret:
        log.warning("webhook receiver running with --insecure: requests are not authenticated")
    import uvicorn

    buffer = InboundBuffer(buffer_url)
    app = create_receiver_app(buffer, webhook_secret or None, max_body_bytes)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: `python -m segment_sync.inbound.receiver --buffer-url ... [--insecure]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--buffer-url",
        default=os.environ.get(
            "SEGMENT_SYNC_INBOUND_BUFFER_URL", "sqlite:///data/inbound_buffer.db"
        ),
        help="sqlite:///path or postgresql://... (env SEGMENT_SYNC_INBOUND_BUFFER_URL)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help=f"accept unsigned requests when {SECRET_ENV_VAR} is not set (local testing only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run_receiver(
        args.buffer_url,
        os.environ.get(SECRET_ENV_VAR) or None,
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        max_body_bytes=args.max_body_bytes,
    )


if __name__ == "__main__":
    main()
