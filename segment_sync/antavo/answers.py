"""Reading Antavo's answers: what one HTTP response says of each event it carried.

- /events/bulk answers 200 with one result per event (`{"results": [{"error": {...}} |
  {"events": [...]}], "total", "errors"}`), so one bad event fails alone; /events answers one
  such result (the customer with its `events`), read the same way. An `error` of any shape
  fails its event. A 2xx answer that does not account for every event (not JSON, no result
  list, one result short, a result that is not an object or names no event ID, a body over
  the 1 MiB read limit) leaves their
  outcome `unknown`: Antavo may have registered them, so they are neither failed nor retried
  (a resend could register them twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from segment_sync.antavo.faults import UNREADABLE, UNSURE, is_retryable, request_fault
from segment_sync.http import parse_retry_after

AUTH_STATUSES = (401, 403)


@dataclass(slots=True)  # not frozen, as ReadyEvent
class _Verdict:
    """One event's fate in one answer; `answer` is its part of the response, if it has one."""

    ok: bool
    event_id: str | None
    error: str | None
    answer: Any = None
    unknown: bool = False


@dataclass(frozen=True)
class _Outcome:
    """One attempt's verdict on the events it carried."""

    identifier: str
    status_code: int | None
    retryable: bool
    retry_after_s: float | None
    error: str | None  # whole-request error; per-event ones are in `events`
    events: list[_Verdict]
    auth: bool = False
    fault: str | None = None  # see faults.py


def _interpret(
    identifier: str, response: httpx.Response, path: str, actions: list[Any]
) -> _Outcome:
    """What an HTTP response means for each event it answered (`actions` as sent)."""
    status, count = response.status_code, len(actions)
    payload = _json_or_none(response.content)
    if not 200 <= status < 300:
        retryable = is_retryable(status)
        error = f"HTTP {status}: {_antavo_error(payload) or _reason(response)}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        auth = status in AUTH_STATUSES
        fault = request_fault(status, _antavo_error(payload) is not None)
        if fault == UNSURE:  # sent, then a 5xx: Antavo may have registered them
            error = unsure_5xx(status, error)
            events = [_Verdict(False, None, error, None, unknown=True)] * count
        else:
            events = [_Verdict(False, None, error)] * count
        return _Outcome(identifier, status, retryable, retry_after, error, events, auth, fault)
    if not isinstance(payload, dict):  # not Antavo's answer: stop, the next would be the same
        error = unknown_outcome(f"HTTP {status} answer is not a JSON object")
        verdicts = [_Verdict(False, None, error, None, unknown=True)] * count
        return _Outcome(identifier, status, False, None, error, verdicts, fault=UNREADABLE)
    if path == "/events":  # its answer reads as a bulk result: the event's, or its error
        verdict = _verdict(payload, actions[0], f"HTTP {status} answer")
        return _Outcome(identifier, status, False, None, None, [verdict])
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != count:
        # Which result belongs to which event is lost: every event of the request is unknown.
        got = len(results) if isinstance(results, list) else "no result list"
        error = unknown_outcome(f"HTTP {status} answer has {got} results for {count} events")
        verdicts = [_Verdict(False, None, error, None, unknown=True)] * count
        # Not Antavo's answer (a catch-all at a wrong base URL) or a broken one: the next
        # request would fare the same, so the run stops rather than make every item unknown.
        return _Outcome(identifier, status, False, None, error, verdicts, fault=UNREADABLE)
    what = f"HTTP {status} answer's result for this event"
    events = [
        _Verdict(True, event_id, None, r)
        if (event_id := _registered(r)) is not None
        else _verdict(r, a, what)
        for r, a in zip(results, actions, strict=True)
    ]
    return _Outcome(identifier, status, False, None, None, events)


def _registered(result: Any) -> str | None:
    """The event ID of a plain success (no error, one event with an ID), else None: what
    `_verdict` makes of the usual result, read with fewer calls; it reads all the others."""
    if type(result) is not dict or result.get("error") is not None:
        return None
    events = result.get("events")
    if type(events) is not list or len(events) != 1:
        return None
    event = events[0]
    return str(event["id"]) if type(event) is dict and event.get("id") else None


def _verdict(result: Any, action: Any, what: str) -> _Verdict:
    """One event's fate from its part of a 2xx answer (`what` names that part).

    Registered only with an event ID and no error; an error alone fails it; anything else
    (not a JSON object, no event ID, an error beside an ID) leaves it unknown."""
    if not isinstance(result, dict):
        return _Verdict(False, None, unknown_outcome(f"{what} is not a JSON object"), result, True)
    message = _antavo_error(result)
    event_id = _event_id(result, action)
    if message is not None and event_id is None:
        return _Verdict(False, None, message, result)
    if message is not None:
        error = unknown_outcome(f"{what} holds both an error ({message}) and an event ID")
        return _Verdict(False, None, error, result, unknown=True)
    if event_id is None:
        error = unknown_outcome(f"{what} names no registered event (no event ID)")
        return _Verdict(False, None, error, result, unknown=True)
    return _Verdict(True, event_id, None, result)


def unknown_outcome(what: str) -> str:
    """The error of an event Antavo's answer does not account for: it may be registered."""
    return (
        f"outcome unknown: Antavo's {what}, so this event may or may not be registered; check "
        "in Antavo before re-sending it (`replay inbound --include-unknown`)"
    )


def unsure_5xx(status: int, said: str) -> str:
    """The error of an event whose request was answered by a 5xx that is not 503."""
    return (
        f"outcome unknown: Antavo answered HTTP {status} after the request was sent ({said}): "
        "it may have registered this event; check in Antavo before re-sending it "
        "(`replay inbound --include-unknown`)"
    )


def unanswered(
    cause: str | None,
    error_type: type[Exception] | None,
    timeout_s: float,
    deadline_s: float | None = None,
) -> str:
    """The error of an event whose request was sent but got no (whole) answer: `timeout_s`
    bounds each read, `deadline_s` (default twice it) the whole request."""
    deadline = 2 * timeout_s if deadline_s is None else deadline_s
    if error_type is not None and issubclass(error_type, httpx.TimeoutException):
        what = f"Antavo sent nothing for the client's {timeout_s:g} s read timeout after"
    elif error_type is not None and issubclass(error_type, TimeoutError):
        what = (
            f"Antavo did not answer within {deadline:g} s (twice the client's {timeout_s:g} s "
            "timeout) after"
        )
    else:
        what = "the connection to Antavo broke while or after"
    detail = f" ({cause})" if cause else ""
    return (
        f"outcome unknown: {what} the request was sent{detail}, so Antavo may have "
        "registered this event; check in Antavo before re-sending it "
        "(`replay inbound --include-unknown`)"
    )


def _json_or_none(raw: bytes) -> Any:
    """Parsed JSON, or None if the bytes are not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _antavo_error(payload: Any) -> str | None:
    """The error an answer holds, else None: `message (type code)` from Antavo's documented
    `{"error": {type, code, message}}`; an error of another shape as its text."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if error is None or error is False or error == "":
        return None
    if not isinstance(error, dict):
        return error if isinstance(error, str) else orjson.dumps(error).decode()
    detail = " ".join(str(error[k]) for k in ("type", "code") if error.get(k) not in (None, ""))
    message = str(error.get("message") or "error")
    return f"{message} ({detail})" if detail else message


def _reason(response: httpx.Response) -> str:
    """A short description of a non-Antavo-shaped error response."""
    text = response.text.strip()
    return text[:300] if text else response.reason_phrase or "error"


def _event_id(payload: Any, action: Any) -> str | None:
    """The registered event's ID from an `events` list (the one with the sent action, else first)."""
    events = payload.get("events") if isinstance(payload, dict) else None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        return None
    if len(events) == 1:  # /events/bulk answers one per event: its id, whatever its action
        event = events[0]
        return str(event["id"]) if isinstance(event, dict) and event.get("id") else None
    ids = [e for e in events if isinstance(e, dict) and e.get("id")]
    for event in ids:
        if event.get("action") == action:
            return str(event["id"])
    return str(ids[0]["id"]) if ids else None
