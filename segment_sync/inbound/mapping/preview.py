"""Preview a mapping: which event it would take and the exact Antavo request it would produce.

Segment's mapping page has "Load event from source": the newest event from the source that the
trigger matches. Here the source is the webhook buffer, read newest first and never claimed or
marked. Nothing is sent: the request is built as the ingest would build it, secrets redacted. Each
event passes the ingest's gate (item_gate): one that cannot be read or evaluated is skipped and
named, never a traceback. Pure apart from `buffered_events`, which only reads the buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from segment_sync.antavo.client import request_for
from segment_sync.inbound.customer_ids import CustomerLookup, external_ids, to_antavo_customers
from segment_sync.inbound.item_gate import ItemFault, through_gate
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import MappingOutcome, build_antavo_event
from segment_sync.inbound.mapping.evaluator import MappingError
from segment_sync.inbound.mapping.trigger_report import judge, why_not
from segment_sync.redaction import Redactor, SecretUrl, redact_url

SCAN_LIMIT = 10_000  # buffered events looked at per mapping, newest first


@dataclass(frozen=True)
class Candidate:
    """One event the preview may use: where it came from and its payload."""

    source: str  # "file x.json" or "buffer item 12"
    payload: Any
    fault: str | None = None  # why the buffered text cannot be read (payload is then empty)


@dataclass(frozen=True)
class AntavoRequest:
    """The request the mapping would send: method, path, full URL and JSON body (redacted)."""

    method: str
    path: str
    url: str
    body: str


@dataclass
class MappingPreview:
    """What one mapping would do: the event it used, its request, or why there is none."""

    mapping: str
    action: str
    enabled: bool
    event: Candidate | None = None
    request: AntavoRequest | None = None
    reasons: list[str] = field(default_factory=list)


def antavo_request(
    mapping: Mapping,
    event: dict[str, Any],
    *,
    multi_accounts: bool,
    endpoint: str | SecretUrl,
    redactor: Redactor,
    customers: CustomerLookup | None = None,
) -> AntavoRequest:
    """The Events API request one event makes through one mapping; MappingError says why not."""
    body = build_antavo_event(mapping, event, multi_accounts)
    if customers is not None:
        outcome = MappingOutcome(mapping.name, body, None)
        wanted = external_ids([outcome])
        (resolved,) = to_antavo_customers([outcome], customers(wanted) if wanted else {})
        if resolved.error:
            raise MappingError(resolved.error)
        body = resolved.antavo_event or body
    path, _ = request_for([orjson.dumps(body)])
    text = orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
    url = redact_url(endpoint).rstrip("/") + path  # shown, never sent: the password masked
    return AntavoRequest("POST", path, url, redactor.text(text) or "")


def preview_mapping(
    mapping: Mapping,
    candidates: Iterable[Candidate],
    *,
    multi_accounts: bool,
    endpoint: str | SecretUrl,
    redactor: Redactor,
    customers: CustomerLookup | None = None,
    from_buffer: bool = True,
) -> MappingPreview:
    """Preview with the first candidate the trigger matches (candidates come newest first)."""
    result = MappingPreview(mapping.name, mapping.action, mapping.enabled)
    if not mapping.enabled:
        result.reasons.append("the mapping is disabled (enabled: false): it sends nothing")
    newest: Candidate | None = None
    scanned = 0
    failures: dict[str, int] = {}
    faults: list[ItemFault] = []
    for candidate in candidates:
        scanned += 1
        newest = newest or candidate
        judged = through_gate(
            candidate.source,
            candidate.payload,
            candidate.fault,
            lambda event: judge(mapping.trigger, event),
        )
        if isinstance(judged, ItemFault):
            faults.append(judged)
        elif judged[0]:
            result.event = candidate
            break
        else:
            for label in judged[1]:
                failures[label] = failures.get(label, 0) + 1
    if result.event is None:
        result.reasons += _no_match(mapping, newest, scanned, failures, from_buffer, faults)
        return result
    result.reasons += _skipped(faults)

    def build(event: dict[str, Any]) -> AntavoRequest | str:
        try:
            return antavo_request(
                mapping,
                event,
                multi_accounts=multi_accounts,
                endpoint=endpoint,
                redactor=redactor,
                customers=customers,
            )
        except MappingError as exc:
            return str(exc)

    built = through_gate(result.event.source, result.event.payload, None, build)
    if isinstance(built, AntavoRequest):
        result.request = built
    else:
        why = redactor.text(built.reason if isinstance(built, ItemFault) else built)
        result.reasons.append(f"the trigger matches but no request can be built: {why}")
    return result


def buffered_events(buffer: Any, limit: int = SCAN_LIMIT, page: int = 500) -> Iterator[Candidate]:
    """The webhook buffer's events newest first (any status), read only, at most `limit`."""
    before: int | None = None
    seen = 0
    while seen < limit:
        records = buffer.newest(min(page, limit - seen), before_id=before)
        if not records:
            return
        for record in records:
            source = f"buffer item {record.id} ({record.status})"
            if record.fault is not None:  # its payload cannot say which event it was
                source = (
                    f"buffer item {record.id} ({record.status}, messageId {record.message_id!r})"
                )
            yield Candidate(source, record.payload, record.fault)
        seen += len(records)
        before = records[-1].id


def event_line(candidate: Candidate) -> str:
    """The event used: where from, messageId, type and event name."""
    payload = candidate.payload if isinstance(candidate.payload, dict) else {}
    parts = [f"messageId {payload.get('messageId', '(none)')}", f"type {payload.get('type')}"]
    if payload.get("event") is not None:
        parts.append(f"event {payload.get('event')}")
    return f"{candidate.source}: " + ", ".join(parts)


def _skipped(faults: list[ItemFault]) -> list[str]:
    """The events passed over because they cannot be read or evaluated (the first 3 named)."""
    if not faults:
        return []
    lines = [f"skipped {len(faults)} event(s) that cannot be read or evaluated (a run fails them):"]
    lines += [f"  {fault.reason}" for fault in faults[:3]]
    return lines


def _no_match(
    mapping: Mapping,
    newest: Candidate | None,
    scanned: int,
    failures: dict[str, int],
    from_buffer: bool,
    faults: list[ItemFault],
) -> list[str]:
    """Why no event was used, per trigger condition, and which events could not be read."""
    if newest is None:
        return ["the webhook buffer holds no events; pass one with --event FILE"]
    if len(faults) == scanned:
        return _skipped(faults)
    if any(fault.name == newest.source for fault in faults):
        lines = ["cannot be read or evaluated (below)"]
    else:
        lines = why_not(mapping.trigger, newest.payload)
    if not from_buffer:
        return [f"the event ({event_line(newest)}) does not match {mapping.trigger!r}:"] + [
            f"  {line}" for line in lines
        ]
    out = [
        f"none of the {scanned} newest buffered event(s) matches the trigger {mapping.trigger!r}",
        f"the newest ({event_line(newest)}):",
    ]
    out += [f"  {line}" for line in lines]
    if scanned > 1:
        out.append(f"across all {scanned}:")
        out += [f"  condition '{label}' failed for {n}" for label, n in failures.items()]
    return out + _skipped(faults)
