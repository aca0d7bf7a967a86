"""The Antavo stand-in's side of the contract: Antavo's error format, request bodies, its config values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

CONFIG_FIELDS = (
    "error_rate",
    "rate_limit_per_minute",
    "rate_limit_window_s",
    "known_customers",
    "creating_actions",
    "fail_next",
    "retry_after_s",
    "seed",
    "bulk_answer_faults",
)
# Injected faults (not Antavo's documented behaviour): a /events/bulk request whose events are
# registered but whose 200 answer does not account for them all. "one_short" leaves out the last
# result; "malformed" cuts the JSON body in half.
BULK_ANSWER_FAULTS = ("one_short", "malformed")


class Rejection(Exception):
    """An Antavo error answer: HTTP status plus the `{"error": {type, code, message}}` body."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.message = status, type_, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Antavo's error envelope."""
        return {"error": {"type": self.type, "code": self.code, "message": self.message}}


def bad_request(message: str, code: int = 113401) -> Rejection:
    """400 BadRequestException."""
    return Rejection(400, "BadRequestException", code, message)


def customer_not_found() -> Rejection:
    """Antavo's documented answer for an unknown customer."""
    return Rejection(404, "NotFoundException", 160212, "Customer not found")


def parse_config(name: str, value: Any) -> Any:
    """A config value of the right type, or ValueError."""
    if name == "known_customers":
        if value is None:
            return None
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ValueError("known_customers must be a list of strings or null")
        return set(value)
    if name == "bulk_answer_faults":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError("bulk_answer_faults must be a list")
        faults = list(value)
        if not all(f in BULK_ANSWER_FAULTS for f in faults):
            raise ValueError(f"bulk_answer_faults items must be one of {list(BULK_ANSWER_FAULTS)}")
        return faults
    if name in ("creating_actions", "fail_next"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a list")
        items = list(value)
        if name == "creating_actions":
            if not all(isinstance(v, str) for v in items):
                raise ValueError("creating_actions must be a list of strings")
            return frozenset(items)
        if not all(isinstance(v, int) and 400 <= v <= 599 for v in items):
            raise ValueError("fail_next must be a list of HTTP error statuses (400-599)")
        return items
    if name == "seed":
        return None if value is None else int(value)
    if name == "rate_limit_per_minute":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("rate_limit_per_minute must be a positive integer or null")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    number = float(value)
    if name == "error_rate" and not 0.0 <= number <= 1.0:
        raise ValueError("error_rate must be between 0 and 1")
    if name in ("rate_limit_window_s", "retry_after_s") and number < 0:
        raise ValueError(f"{name} must not be negative")
    if name == "rate_limit_window_s" and number == 0:
        raise ValueError("rate_limit_window_s must be positive")
    return number


def event_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as Antavo lists it in responses."""
    summary = {"id": event["id"], "action": event["action"]}
    points = event["data"].get("points")
    if isinstance(points, int | float) and not isinstance(points, bool):
        summary["points"] = points
    if "account" in event:
        summary["account"] = {"id": event["account"]}
    return summary


def parse_json(raw: bytes) -> Any:
    """Parsed JSON body, or a 400 rejection."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("Request body is not valid JSON", code=113400) from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An orjson response labelled as coming from the stand-in."""
    return Response(
        orjson.dumps(body),
        status,
        {"X-Standin": "antavo", **(headers or {})},
        media_type="application/json",
    )
