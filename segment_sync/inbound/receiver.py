"""Webhook receiver for Segment's "Webhooks (Actions)" destination: verify, store durably, answer.

`POST /segment` takes one event (a JSON object) or a batch (a JSON array of objects). A request is
answered 200 only after its events are committed to the inbound buffer; a rejected request (bad
JSON, wrong signature, oversize body) gets a 4xx naming the problem and stores nothing.

Concurrent requests are committed together (group commit, see `receiver_writer`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import (
    Row,
    derived_message_id,
    rows_for,
    unstorable_ids,
)
from segment_sync.inbound.http_limits import ReceiverLimits, server_config
from segment_sync.inbound.receiver_serving import ReceiverApp, tune_collector
from segment_sync.inbound.receiver_writer import GroupCommitWriter
from segment_sync.inbound.refusal_log import RefusalLog
from segment_sync.inbound.request_body import (
    ClientGone,
    UnverifiedBudget,
    check_content_type,
    first_headers,
    parse,
    read_body,
)
from segment_sync.inbound.request_body import Rejected as _Rejected
from segment_sync.inbound.signature import verify
from segment_sync.redaction import Redactor, SecretUrl, error_kind

log = logging.getLogger(__name__)

DEFAULT_SECRET_ENV = "SEGMENT_WEBHOOK_SECRET"  # inbound.webhook_secret_env's default
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
OFF_LOOP_BYTES = 256 * 1024
DEFAULT_LIMITS = ReceiverLimits()
# Memory a parsed body takes per byte (JSON objects and the received text), held until verified.
PARSED_BYTES_PER_BYTE = 3
STORE_RETRY_AFTER_S = 5  # a 503 from a busy or full buffer: the sender's retry comes back later
# SQLite's fixed messages, safe to log (they carry no SQL or values).
SQLITE_PROBLEMS = (
    "database is locked",
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database file",
    "disk I/O error",
)


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def store_problem(exc: BaseException) -> str:
    """Why the buffer refused a write: SQLite's own fixed words where it gave them (no SQL, no
    payload), else the error's kind; the fix for a lock held too long."""
    text = str(getattr(exc, "orig", None) or exc)
    said = next((words for words in SQLITE_PROBLEMS if words in text), None)
    if said is None:
        return error_kind(exc)
    fix = (
        ": another process held the buffer's write lock longer than its busy timeout "
        "(a long transaction, or a copy tool on inbound.buffer_url)"
        if said == "database is locked"
        else ""
    )
    return f"{error_kind(exc)}: {said}{fix}"


def _bearer_token(headers: Mapping[str, str]) -> bytes:
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    return value.strip().encode("utf-8", "replace") if scheme.lower() == "bearer" else b""


def create_receiver_app(
    buffer: InboundBuffer,
    webhook_secret: str | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    *,
    group_commit: bool = True,
    webhook_token: str | None = None,
    allow_unverified_batches: bool = False,
    limits: ReceiverLimits = DEFAULT_LIMITS,
    secret_env: str = DEFAULT_SECRET_ENV,
) -> Starlette:
    """The receiver as an ASGI app: `POST /segment` stores events, `GET /healthz` reports.

    With `webhook_token`, every request must carry `Authorization: Bearer <token>`, checked
    before the body is read. Without it, a signed batch of more than one event is refused
    (its X-Signature covers only the first event) unless `allow_unverified_batches`.
    """
    writer = GroupCommitWriter(buffer) if group_commit else None
    token = webhook_token.encode("utf-8") if webhook_token else None
    # One request may hold its compressed and decompressed bytes and the parsed form at once.
    per_request = (2 + PARSED_BYTES_PER_BYTE) * max_body_bytes
    budget = UnverifiedBudget(max(limits.max_unverified_bytes, per_request))
    refuse_batches = bool(webhook_secret) and token is None and not allow_unverified_batches
    refusals = RefusalLog(Redactor([webhook_secret, webhook_token]))

    async def store(rows: list[Row]) -> tuple[int, int]:
        if writer is not None:
            return await writer.store(rows)
        return (await run_in_threadpool(buffer.add_row_groups, [rows]))[0]

    def check_headers(headers: dict[str, str]) -> str | None:
        """Everything decided before the body is read; returns the X-Signature."""
        if token is not None and not hmac.compare_digest(_bearer_token(headers), token):
            given = "missing" if "authorization" not in headers else "wrong"
            raise _Rejected(
                401,
                f"{given} Authorization header: set the Headers field of Segment's Webhooks "
                "(Actions) destination to 'Authorization: Bearer <token>', the token in the "
                "variable named by inbound.webhook_token_env",
                {"WWW-Authenticate": "Bearer"},
            )
        check_content_type(headers.get("content-type"))
        signature = headers.get("x-signature")
        if webhook_secret and not signature:
            raise _Rejected(
                401,
                "missing X-Signature header: set the shared secret in Segment's "
                f"Webhooks (Actions) settings to the receiver's {secret_env}",
            )
        return signature

    def check_body(body: bytes, signature: str | None) -> list[Row]:
        parsed, events, payloads = parse(body)
        if refuse_batches and len(events) > 1:
            raise _Rejected(
                401,
                f"batch of {len(events)} events refused: its X-Signature covers only the first "
                "event, so the others are unauthenticated. Set inbound.webhook_token_env and "
                "put 'Authorization: Bearer <token>' in the destination's Headers field, or set "
                "the mapping's batch size to 1 (or inbound.allow_unverified_batches: true)",
            )
        if webhook_secret and not verify(body, parsed, signature, webhook_secret):
            raise _Rejected(
                401,
                "X-Signature does not match the body: the shared secret in Segment's "
                f"Webhooks (Actions) settings must equal the receiver's {secret_env}",
            )
        if unstorable := unstorable_ids(events):
            index, problem = unstorable[0]
            log.warning(
                "stored %d event(s) under an id derived from their content: their messageId "
                "cannot be used (the first, at index %d, %s; stored as %s, the message_id the "
                "inbound logs show); a resend still maps to the same id. Send a messageId of "
                "printable text, as Segment generates",
                len(unstorable),
                index,
                problem,
                derived_message_id(events[index]),
            )
        return rows_for(events, payloads)

    async def segment(scope: Scope, receive: Receive) -> Response:
        try:
            headers = first_headers(scope["headers"])
            signature = check_headers(headers)
            with budget.hold(enabled=token is None) as hold:
                body = await read_body(
                    receive, headers, max_body_bytes, hold, limits.body_timeout_s
                )
                hold.take(PARSED_BYTES_PER_BYTE * len(body))  # the parse before the signature
                if len(body) > OFF_LOOP_BYTES:  # parsing a big batch would stall other requests
                    rows = await run_in_threadpool(check_body, body, signature)
                else:
                    rows = check_body(body, signature)
                del body
        except _Rejected as rejected:
            refusals.refused(rejected.status, rejected.message, scope.get("client"))
            headers = {"Connection": "close", **rejected.headers}
            return _json(rejected.status, {"error": rejected.message}, headers)
        except ClientGone as gone:  # one line, not a traceback: a cheap way to flood the log
            peer = scope.get("client")
            client = f"{peer[0]}:{peer[1]}" if peer else "?"
            log.warning("client %s disconnected mid-body %s; nothing stored", client, gone)
            return Response(status_code=400)  # nobody reads it; uvicorn drops it
        try:
            stored, duplicates = await store(rows)
        except Exception as exc:  # Segment retries 5xx
            log.error("could not store %d inbound events: %s", len(rows), store_problem(exc))
            return _json(
                503,
                {"error": "the events could not be stored and were not accepted; retry later"},
                {"Retry-After": str(STORE_RETRY_AFTER_S)},
            )
        return _json(200, {"stored": stored, "duplicates": duplicates})

    async def segment_route(request: Request) -> Response:
        return await segment(request.scope, request.receive)

    async def healthz(request: Request) -> Response:
        # With a token, the buffer's counts are for callers that hold it; anyone may see "ok".
        if token is not None and not hmac.compare_digest(_bearer_token(request.headers), token):
            return _json(200, {"status": "ok"})
        pending = await run_in_threadpool(buffer.pending_count)
        return _json(200, {"status": "ok", "pending": pending})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if writer is not None:
            await run_in_threadpool(writer.close)

    app = ReceiverApp(
        segment,
        routes=[
            Route("/segment", segment_route, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.buffer = buffer
    app.state.writer = writer
    app.state.budget = budget
    return app


def run_receiver(
    buffer_url: str | SecretUrl,
    webhook_secret: str | None,
    host: str = "127.0.0.1",
    port: int = 8787,
    insecure: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    *,
    webhook_token: str | None = None,
    allow_unverified_batches: bool = False,
    limits: ReceiverLimits = DEFAULT_LIMITS,
    secret_env: str = DEFAULT_SECRET_ENV,
    workers: int = 1,
) -> None:
    """Serve the receiver with uvicorn; refuses to start unauthenticated unless `insecure`.

    `workers` above 1 serves from that many forked processes on one socket (`workers.py`).

    `secret_env` names the variable the secret came from (inbound.webhook_secret_env), so the
    401 answers tell the operator which one to fix.
    """
    if not webhook_secret and not webhook_token and not insecure:
        raise SystemExit(
            f"refusing to start the webhook receiver without a shared secret: set {secret_env} "
            "to the shared secret configured in Segment's Webhooks (Actions) destination, "
            "or pass --insecure to accept unsigned requests (local testing only)"
        )
    if not webhook_secret and not webhook_token:
        log.warning("webhook receiver running with --insecure: requests are not authenticated")
    import uvicorn

    def serve(sockets: list | None = None) -> None:
        buffer = InboundBuffer(buffer_url)
        app = create_receiver_app(
            buffer,
            webhook_secret or None,
            max_body_bytes,
            webhook_token=webhook_token,
            allow_unverified_batches=allow_unverified_batches,
            limits=limits,
            secret_env=secret_env,
        )
        tune_collector()
        uvicorn.Server(server_config(app, host, port, limits, log_level="info")).run(sockets)

    if workers <= 1:
        serve()
        return
    from segment_sync.inbound.workers import listening_socket, serve_workers

    InboundBuffer(buffer_url).close()  # a bad buffer fails here once, not in every worker
    serve_workers(workers, listening_socket(host, port), lambda sock: serve([sock]))
