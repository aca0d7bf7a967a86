"""How the Segment stand-in reads a Tracking API request: auth, gzip, JSON, and the documented limits."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.responses import Response

from segment_sync.standins.labels import SEGMENT_REGIONS as REGIONS

# Segment documents "500 KB" per batch request without saying which kilobyte. The stand-in takes
# 500,000 bytes, the stricter reading (500 KiB would be 512,000): a client that fits under it
# fits under either. Measured on the JSON body after gzip decompression.
MAX_REQUEST_BYTES = 500_000


MAX_MESSAGE_BYTES = 32 * 1024


MAX_BATCH_MESSAGES = 2500


MAX_MESSAGE_ID_CHARS = 100


MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})


EMPTY = (None, "")


class Rejection(Exception):
    """A request answered with an error status instead of being processed."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        region: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.region, self.headers = region, headers or {}


def check_region(region: str, what: str) -> None:
    """ValueError unless `region` is us or eu."""
    if region not in REGIONS:
        raise ValueError(f"{what} must be one of {', '.join(REGIONS)}, got {region!r}")


def body_write_key(payload: Any) -> str | None:
    """`writeKey` from a JSON object body, if it is a string."""
    key = payload.get("writeKey") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None


def decode_body(raw: bytes, encoding: str | None) -> bytes:
    """The JSON bytes: gunzipped if needed, at most 500,000 bytes; 400 otherwise."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = gunzip_capped(raw, MAX_REQUEST_BYTES)
    elif encoding == "identity":
        body = raw
    else:
        raise Rejection(400, "bad_request", "unsupported Content-Encoding (use gzip or none)")
    if len(body) > MAX_REQUEST_BYTES:
        raise Rejection(
            400, "request_too_large", f"request body is over {MAX_REQUEST_BYTES} bytes (500 KB)"
        )
    return body


def gunzip_capped(raw: bytes, limit: int) -> bytes:
    """Decompress gzip, stopping one byte past `limit` (no gzip bombs); 400 if invalid."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error:
        raise Rejection(400, "bad_request", "body is not valid gzip") from None
    if len(body) <= limit and not decompressor.eof:
        raise Rejection(400, "bad_request", "gzip body is truncated")
    return body


def parse_json(body: bytes) -> Any:
    """orjson-parsed body; 400 for invalid JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejection(400, "invalid_json", "request body is not valid JSON") from None


def batch_messages(payload: Any) -> list:
    """The `batch` list of a batch body; 400 if absent or not a list."""
    if not isinstance(payload, dict):
        raise Rejection(400, "bad_request", "body must be a JSON object")
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise Rejection(400, "bad_request", "batch must be a list of messages")
    return batch


def single_messages(payload: Any, kind: str) -> list[dict]:
    """A one-message list for `/v1/<kind>`, typed by the path and without `writeKey`."""
    if not isinstance(payload, dict):
        raise Rejection(400, "bad_request", "body must be a JSON object")
    message = {k: v for k, v in payload.items() if k != "writeKey"}
    message["type"] = kind
    return [message]


def check_message_sizes(messages: list, body_len: int) -> None:
    """400 for the whole request when one message serialises to more than 32 KB."""
    if body_len <= MAX_MESSAGE_BYTES:
        return
    dumps = orjson.dumps
    for index, message in enumerate(messages):
        if len(dumps(message)) > MAX_MESSAGE_BYTES:
            raise Rejection(400, "message_too_large", f"message {index} is over 32 KB")


def sort_messages(messages: list) -> tuple[list[dict], dict[str, int]]:
    """Valid messages (writeKey removed), and drop counts by reason for the rest."""
    accepted: list[dict] = []
    reasons: dict[str, int] = {}
    for message in messages:
        problem = message_problem(message)
        if problem is None:
            if "writeKey" in message:
                message = {k: v for k, v in message.items() if k != "writeKey"}
            accepted.append(message)
        else:
            reasons[problem] = reasons.get(problem, 0) + 1
    return accepted, reasons


def message_problem(message: Any) -> str | None:
    """Why Segment would drop this message, or None when it is valid."""
    if type(message) is not dict:
        return "not_an_object"
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        return "bad_type"
    if message.get("userId") in EMPTY and message.get("anonymousId") in EMPTY:
        return "no_user_anon_id"
    message_id = message.get("messageId")
    if type(message_id) is not str or not message_id:
        return "no_message_id"
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        return "message_id_too_long"
    if kind == "track" and not message.get("event"):
        return "track_without_event"
    return None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An orjson response."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
