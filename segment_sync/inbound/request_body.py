"""A webhook request's body: media type, size, read time, memory budget, gzip, depth, JSON, event texts.

Each check raises `Rejected` with the HTTP status and a one-line message naming the problem and
its fix. Events are kept as the exact JSON text received (for a batch, each element's slice of
the body), so values JSON can carry but Python floats cannot, such as integers above 2**64,
reach the buffer unchanged.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterable
from typing import Any

import msgspec
import orjson
from starlette.types import Receive

from segment_sync.inbound.json_depth import MAX_EVENT_DEPTH, body_depth_limit, nested_deeper_than

JSON_WHITESPACE = " \t\n\r"
UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii")


class Rejected(Exception):
    """A request refused with an HTTP status and a message saying what to fix."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived: nobody waits for an answer."""


class UnverifiedBudget:
    """Bytes held for request bodies not yet authenticated, shared by every request (one loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def hold(self, enabled: bool = True) -> _Hold:
        """A reservation that grows as a body is read and is given back when its `with` exits."""
        return _Hold(self if enabled else None)


class _Hold:
    """A plain context manager: a generator-based one cost more CPU than a single request's
    other checks together."""

    def __init__(self, budget: UnverifiedBudget | None) -> None:
        self.budget = budget
        self.taken = 0

    def __enter__(self) -> _Hold:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def take(self, n: int) -> None:
        budget = self.budget
        if budget is None:
            return
        if budget.used + n > budget.limit:
            raise Rejected(
                503,
                "the receiver is holding its limit of unauthenticated request bodies; retry "
                "shortly (set inbound.webhook_token_env so requests are authenticated up front)",
                {"Retry-After": "5"},
            )
        budget.used += n
        self.taken += n

    def release(self) -> None:
        if self.budget is not None:
            self.budget.used -= self.taken
        self.taken = 0


def check_content_type(value: str | None) -> None:
    """Accept JSON media types (`application/json`, `*/*+json`) in UTF-8; a missing one is JSON."""
    if value is None or value == "application/json" or not value.strip():
        return
    media, _, params = value.partition(";")
    media = media.strip().lower()
    kind, _, subtype = media.partition("/")
    if not (media == "application/json" or (kind and subtype.endswith("+json"))):
        raise Rejected(
            415,
            f"Content-Type {media!r} is not JSON: send the body as application/json "
            "(Segment's Webhooks (Actions) destination does)",
        )
    for param in params.split(";"):
        name, _, charset = param.partition("=")
        charset = charset.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in UTF8_CHARSETS:
            raise Rejected(415, f"charset {charset!r} is not supported: send the JSON as UTF-8")


def _too_big(max_body_bytes: int) -> Rejected:
    return Rejected(
        413,
        f"request body is larger than {max_body_bytes} bytes: lower the batch size in Segment's "
        "Webhooks (Actions) mapping, or raise inbound.max_body_bytes",
    )


def first_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Each header's first value by name, in one pass (as Starlette's `Headers.get` finds it:
    ASGI servers give names in lower case); five `Headers.get` scans cost more per request."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


async def read_body(
    receive: Receive, headers: dict[str, str], max_body_bytes: int, hold: _Hold, timeout_s: float
) -> bytes:
    """The decoded body: 413 past `max_body_bytes`, 408 when not all in within `timeout_s`.

    `headers` as from `first_headers`; ASGI messages are read here, not through Starlette's
    `Request.stream` (an async generator per request).
    """
    declared = headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise Rejected(400, "Content-Length is not a number") from None
        if length > max_body_bytes:
            raise _too_big(max_body_bytes)
    chunks: list[bytes] = []
    total = 0
    timer = _Deadline(timeout_s)
    try:
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                expected = f"{declared} declared" if declared is not None else "no length declared"
                raise ClientGone(f"after {total} body bytes ({expected})")
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            total += len(chunk)
            if total > max_body_bytes:
                raise _too_big(max_body_bytes)
            hold.take(len(chunk))
            chunks.append(chunk)
    except asyncio.CancelledError:
        if timer.expired():
            raise Rejected(
                408, f"the request body did not arrive within {timeout_s:g} s: send it at once"
            ) from None
        raise
    finally:
        timer.cancel()
    body = b"".join(chunks)
    chunks.clear()
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise Rejected(415, f"Content-Encoding {encoding!r} is not supported: send gzip or none")
    return _gunzip(body, max_body_bytes, hold)


class _Deadline:
    """Cancels the current task after `seconds`, like `asyncio.timeout` at a third of its CPU
    (it was a tenth of a single-event request's): one timer, no state machine."""

    def __init__(self, seconds: float) -> None:
        self._task = asyncio.current_task()
        self._base = self._task.cancelling()  # cancels pending before this deadline: not ours
        self._fired = False
        self._timer = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def expired(self) -> bool:
        """Whether the CancelledError being handled is this deadline's (then it is consumed)."""
        return self._fired and self._task.uncancel() <= self._base

    def cancel(self) -> None:
        self._timer.cancel()


def _gunzip(body: bytes, max_body_bytes: int, hold: _Hold) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_body_bytes + 1)
    except zlib.error as exc:
        raise Rejected(
            400, f"body is not valid gzip ({exc}): send it gzip-compressed or plain"
        ) from None
    if len(data) > max_body_bytes or inflater.unconsumed_tail:
        raise _too_big(max_body_bytes)
    if not inflater.eof:
        raise Rejected(400, "gzip body is truncated: send the complete compressed body")
    if inflater.unused_data:
        raise Rejected(
            400,
            f"gzip body has {len(inflater.unused_data)} bytes after the end of its compressed "
            "data: send exactly one gzip member and nothing after it",
        )
    hold.take(len(data))
    return data


def parse(body: bytes) -> tuple[object, list[Any], list[str]]:
    """(parsed JSON, events, each event's JSON text as received) or a 400 saying what is wrong.

    The nesting depth is checked first, on the bytes, before any recursive parse or signature work.
    """
    if not body:
        raise Rejected(
            400, "body is empty: send one Segment event as a JSON object or a JSON array"
        )
    if nested_deeper_than(body, body_depth_limit(body)):  # before anything walks it
        raise Rejected(
            400,
            f"body nests objects and arrays more than {MAX_EVENT_DEPTH} levels deep (the "
            f"receiver's limit for an event): send events of at most {MAX_EVENT_DEPTH} levels",
        )
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(
            400,
            f"body is not valid JSON ({exc}): send one Segment event as a JSON object, "
            "or a batch as a JSON array of objects, UTF-8 encoded",
        ) from None
    if isinstance(parsed, dict):
        return parsed, [parsed], [body.decode("utf-8")]
    if not isinstance(parsed, list):
        raise Rejected(
            400,
            f"body is a JSON {type(parsed).__name__}: send one Segment event as a JSON object, "
            "or a batch as a JSON array of objects",
        )
    if not parsed:
        raise Rejected(400, "batch is an empty JSON array: send at least one event object")
    # An item that is no object is stored like the others, and the ingest fails it alone (its
    # item gate names why): Segment does not resend a refused batch, so a 400 would lose the
    # events beside it.
    return parsed, parsed, element_texts(body, len(parsed))


_DECODER = json.JSONDecoder()
# Splits an array into its elements' source bytes in C; orjson stays the judge of validity
# (msgspec lets through invalid UTF-8 and out-of-range numbers that ingest could not read).
_RAW_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])


def element_texts(body: bytes, count: int) -> list[str]:
    """The source text of each element of a JSON array already validated by orjson."""
    try:
        texts = [str(raw, "utf-8") for raw in _RAW_ELEMENTS.decode(body)]
    except (msgspec.DecodeError, RecursionError):
        texts = _element_texts_slowly(body.decode("utf-8"))
    if len(texts) != count:  # cannot happen for JSON orjson accepted; never store misaligned text
        raise Rejected(400, "batch could not be split into its events: send a plain JSON array")
    return texts


def _element_texts_slowly(text: str) -> list[str]:
    """`element_texts` with the standard library, for arrays msgspec declines (deep nesting)."""
    out: list[str] = []
    i = text.index("[") + 1
    try:
        while True:
            while text[i] in JSON_WHITESPACE:
                i += 1
            _, end = _DECODER.raw_decode(text, i)
            out.append(text[i:end])
            i = end
            while text[i] in JSON_WHITESPACE:
                i += 1
            if text[i] == "]":
                break
            i += 1  # the comma
    except (RecursionError, ValueError):
        raise Rejected(400, "batch is nested too deeply: send events as flat JSON") from None
    return out
