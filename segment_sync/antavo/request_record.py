"""One Antavo HTTP attempt as the inbound log records it: per-event answers, secrets masked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from segment_sync.antavo.answers import _Outcome, _Verdict
from segment_sync.antavo.event_status import event_status_code
from segment_sync.antavo.records import AntavoRequestRecord, EventColumns
from segment_sync.http import TimedPost
from segment_sync.redaction import Redactor


@dataclass(slots=True)  # not frozen: its __init__ costs a third of a frozen one's, per event
class ReadyEvent:
    """One serialised event waiting to be sent."""

    index: int
    body: bytes
    customer: Any
    action: Any


def request_record(
    redactor: Redactor,
    *,
    identifier: str,
    path: str,
    attempt: int,
    chunk: list[ReadyEvent],
    body: bytes,
    post: TimedPost,
    outcome: _Outcome,
    response_text: str | None,
) -> AntavoRequestRecord:
    """The record of one attempt: the request, Antavo's answer, and each event's part of both."""
    redact = redactor.text
    sent = body.decode("utf-8")
    verdicts = outcome.events
    status = outcome.status_code
    answers = answer_bodies(redactor, verdicts)
    if response_text is not None and None in answers:  # no part of its own: the whole answer
        answers = [response_text if answer is None else answer for answer in answers]
    if len(verdicts) != len(chunk):
        raise ValueError(f"{len(verdicts)} verdicts for {len(chunk)} events")
    ok = [verdict.ok for verdict in verdicts]
    # A registered event's status is the request's (event_status_code).
    codes = (
        [status] * len(verdicts)
        if all(ok)
        else [status if v.ok else event_status_code(status, False, v.answer) for v in verdicts]
    )
    columns = EventColumns(
        index=[item.index for item in chunk],
        ok=ok,
        status_code=codes,
        event_id=[verdict.event_id for verdict in verdicts],
        error=[verdict.error for verdict in verdicts],
        customer=redacted_texts(redactor, [item.customer for item in chunk]),
        action=redacted_texts(redactor, [item.action for item in chunk]),
        request_body=event_bodies(redactor, chunk, sent),
        response_body=answers,
        unknown=[verdict.unknown for verdict in verdicts],
    )
    return AntavoRequestRecord(
        identifier=identifier,
        started_at=post.started_at,
        path=path,
        status_code=outcome.status_code,
        response_time_s=post.elapsed_s,
        request_body=redact(sent) or "",
        response_body=response_text,
        error=outcome.error,
        attempt=attempt,
        event_count=len(chunk),
        columns=columns,
    )


def event_bodies(redactor: Redactor, chunk: list[ReadyEvent], sent: str) -> list[str]:
    """Each event's body as sent, redacted; a clean request body (`sent`, every event's body
    in it) spares a scan per event."""
    if redactor.clean(sent):
        return [item.body.decode("utf-8") for item in chunk]
    return [redactor.text(item.body.decode("utf-8")) or "" for item in chunk]


def redacted_texts(redactor: Redactor, values: list[Any]) -> list[str | None]:
    """Each value as text, redacted (None stays None). Checked at once, as `answer_bodies`:
    a clean concatenation has clean parts."""
    texts = [None if value is None else str(value) for value in values]
    if redactor.clean("\n".join(t for t in texts if t is not None)):
        return texts
    return [redactor.text(t) for t in texts]


def answer_bodies(redactor: Redactor, verdicts: list[_Verdict]) -> list[str | None]:
    """Each event's part of the answer as JSON text, redacted (None where it has none).

    The parts are checked at once: a clean concatenation has clean parts. Re-serialised, not
    cut from the response text, whose escapes (\\u0073) could hide a secret."""
    texts = [None if v.answer is None else orjson.dumps(v.answer).decode() for v in verdicts]
    if redactor.clean("".join(t for t in texts if t is not None)):
        return texts
    return [redactor.text(t) for t in texts]
