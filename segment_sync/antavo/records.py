"""What the Antavo client hands back (per-event results, per-request records) and what it POSTs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

MAX_BULK_EVENTS = 50


# Per event, not frozen: a frozen dataclass's __init__ costs five times as much (about 1 µs).
@dataclass(slots=True)
class EventAnswer:
    """What one request said about one of its events (secrets redacted)."""

    index: int  # the event's position in the `send_events` call
    ok: bool
    status_code: int | None  # this event's own status (see event_status.py)
    event_id: str | None
    error: str | None
    customer: str | None
    action: str | None
    request_body: str  # this event as sent
    response_body: str | None  # Antavo's answer for it: its bulk result, or the whole response
    unknown: bool = False  # a 2xx answer that does not say what became of this event


@dataclass(frozen=True, slots=True)
class EventColumns:
    """A request's EventAnswers as a list per field, in the request's order: the inbound log
    takes them as its columns, with no object per event."""

    index: list[int]
    ok: list[bool]
    status_code: list[int | None]
    event_id: list[str | None]
    error: list[str | None]
    customer: list[str | None]
    action: list[str | None]
    request_body: list[str]
    response_body: list[str | None]
    unknown: list[bool]

    def answers(self) -> tuple[EventAnswer, ...]:
        """The same answers, one object per event."""
        columns: list[list[Any]] = [getattr(self, f.name) for f in fields(EventAnswer)]
        return tuple(EventAnswer(*values) for values in zip(*columns, strict=True))


@dataclass(frozen=True)
class AntavoRequestRecord:
    """One HTTP attempt against Antavo: the inbound log's rows (secrets redacted)."""

    identifier: str
    started_at: datetime
    path: str
    status_code: int | None
    response_time_s: float
    request_body: str
    response_body: str | None
    error: str | None
    attempt: int
    event_count: int
    columns: EventColumns  # what it said of each event

    @property
    def events(self) -> tuple[EventAnswer, ...]:
        """What it said of each event, one EventAnswer each (built on each call)."""
        return self.columns.answers()


@dataclass(slots=True)  # per event, not frozen: as EventAnswer
class EventResult:
    """What became of one event passed to `send_events`."""

    index: int
    ok: bool
    event_id: str | None
    error: str | None
    retryable: bool
    status_code: int | None
    identifier: str | None
    auth_error: bool = False  # 401/403: the credentials or the stack are wrong, not the event
    unknown: bool = False  # Antavo's answer does not account for it: it may be registered
    fault: str | None = (
        None  # not the event's fault: Antavo down, throttling, a wrong URL (faults.py)
    )


def request_for(bodies: list[bytes]) -> tuple[str, bytes]:
    """The (path, body) of one POST carrying these event bodies: /events alone, else bulk."""
    if len(bodies) == 1:
        return "/events", bodies[0]
    return "/events/bulk", b'{"events":[' + b",".join(bodies) + b"]}"
