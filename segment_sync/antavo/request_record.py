"""One Antavo HTTP attempt as the inbound log records it: per-event answers, secrets masked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from segment_sync.antavo.answers import _Outcome, _Verdict
from segment_sync.antavo.event_status import event_status_code
from segment_sync.antavo.records import AntavoRequestRecord, EventAnswer
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
    answers = tuple(
        EventAnswer(
            index=item.index,
            ok=verdict.ok,
            status_code=event_status_code(outcome.status_code, verdict.ok, verdict.answer),
            event_id=verdict.event_id,
            error=verdict.error,
            customer=None if item.customer is None else redact(str(item.customer)),
            action=None if item.action is None else redact(str(item.action)),
            request_body=request_body,
            response_body=response_text if answer is None else answer,
            unknown=verdict.unknown,
        )
        for item, verdict, request_body, answer in zip(
            chunk,
            verdicts,
            event_bodies(redactor, chunk, sent),
            answer_bodies(redactor, verdicts),
            strict=True,
        )
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
        events=answers,
    )


def event_bodies(redactor: Redactor, chunk: list[ReadyEvent], sent: str) -> list[str]:
    """Each event's body as sent, redacted; a clean request body (`sent`, every event's body
    in it) spares a scan per event."""
    if redactor.clean(sent):
        return [item.body.decode("utf-8") for item in chunk]
    return [redactor.text(item.body.decode("utf-8")) or "" for item in chunk]


def answer_bodies(redactor: Redactor, verdicts: list[_Verdict]) -> list[str | None]:
    """Each event's part of the answer as JSON text, redacted (None where it has none).

    The parts are checked at once: a clean concatenation has clean parts. Re-serialised, not
    cut from the response text, whose escapes (\\u0073) could hide a secret."""
    texts = [None if v.answer is None else orjson.dumps(v.answer).decode() for v in verdicts]
    if redactor.clean("".join(t for t in texts if t is not None)):
        return texts
    return [redactor.text(t) for t in texts]
