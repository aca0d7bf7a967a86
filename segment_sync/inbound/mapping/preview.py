"""Preview a mapping: which event it would take and the exact Antavo request it would produce.

Segment's mapping page has "Load event from source": the newest event from the source that the
trigger matches. Here the source is the webhook buffer, read newest first and never claimed or
marked. Nothing is sent: the request is built as the ingest would build it, secrets redacted.
Pure apart from `buffered_events`, which only reads the buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from segment_sync.antavo.client import request_for
from segment_sync.inbound.customer_ids import CustomerLookup, external_ids, to_antavo_customers
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import MappingOutcome, build_antavo_event
from segment_sync.inbound.mapping.evaluator import MappingError
from segment_sync.inbound.mapping.js_values import UNDEFINED, js_string
from segment_sync.inbound.mapping.trigger_nodes import (
    And,
    Comparison,
    FunctionCall,
    Node,
    Or,
    field_value,
)
from segment_sync.inbound.mapping.triggers import TriggerSyntaxError, parse_trigger
from segment_sync.redaction import Redactor, SecretUrl, redact_url

SCAN_LIMIT = 10_000  # buffered events looked at per mapping, newest first
_FIELD_LABELS = {
    "type": "Event type",
    "event": "Event name",
    "name": "Name",
    "userId": "User ID",
    "anonymousId": "Anonymous ID",
}
_OPS = {
    "=": "is",
    "!=": "is not",
    "<": "is less than",
    "<=": "is at most",
    ">": "is greater than",
    ">=": "is at least",
}


@dataclass(frozen=True)
class Candidate:
    """One event the preview may use: where it came from and its payload."""

    source: str  # "file x.json" or "buffer item 12"
    payload: Any


@dataclass(frozen=True)
class ConditionCheck:
    """One leaf condition of a trigger against one event."""

    label: str  # the condition in the UI's words, e.g. "Event type is track"
    matched: bool
    actual: str  # what the event holds, e.g. "event type is identify"

    def line(self) -> str:
        """E.g. condition 'Event type is track': event type is identify."""
        return f"condition '{self.label}': {self.actual}"


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


def condition_label(node: Comparison | FunctionCall) -> str:
    """A leaf condition in the UI's words: 'Event type is track', 'properties.x contains "a"'."""
    name = _field_label(node.path)
    if isinstance(node, FunctionCall):
        verb = {"contains": "contains", "match": "matches"}[node.name]
        if node.negated:
            verb = {"contains": "does not contain", "match": "does not match"}[node.name]
        return f'{name} {verb} "{node.argument}"'
    value = "null" if node.value is None else js_string(node.value)
    return f"{name} {_OPS[node.op]} {value}"


def check_conditions(trigger: str, event: Any) -> list[ConditionCheck]:
    """Every leaf condition of the trigger, in order, evaluated against the event."""
    root = parse_trigger(trigger).root
    payload = event if isinstance(event, dict) else {}
    checks = []
    for leaf in _leaves(root):
        actual = field_value(payload, leaf.path)
        label = _field_label(leaf.path)
        said = f"{label[0].lower()}{label[1:]} {_describe(actual)}"
        if (
            isinstance(leaf, FunctionCall)
            and actual is not UNDEFINED
            and not isinstance(actual, str)
        ):
            said += " (not a string)"
        checks.append(ConditionCheck(condition_label(leaf), leaf.matches(payload), said))
    return checks


def why_not(trigger: str, event: Any) -> list[str]:
    """Why the trigger does not match the event: one line per failed condition."""
    if not isinstance(event, dict):
        return ["the event is not a JSON object"]
    try:
        checks = check_conditions(trigger, event)
    except TriggerSyntaxError as exc:
        return [f"the trigger does not parse: {exc}"]
    return [c.line() for c in checks if not c.matched]


def matches(trigger: str, event: Any) -> bool:
    """The trigger matches the event (a trigger that does not parse matches nothing)."""
    try:
        return parse_trigger(trigger).matches(event)
    except TriggerSyntaxError:
        return False


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
    for candidate in candidates:
        scanned += 1
        newest = newest or candidate
        if matches(mapping.trigger, candidate.payload):
            result.event = candidate
            break
        for label in _failed_labels(mapping.trigger, candidate.payload):
            failures[label] = failures.get(label, 0) + 1
    if result.event is None:
        result.reasons += _no_match(mapping, newest, scanned, failures, from_buffer)
        return result
    try:
        result.request = antavo_request(
            mapping,
            result.event.payload,
            multi_accounts=multi_accounts,
            endpoint=endpoint,
            redactor=redactor,
            customers=customers,
        )
    except MappingError as exc:
        result.reasons.append(f"the trigger matches but no request can be built: {exc}")
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
            yield Candidate(f"buffer item {record.id} ({record.status})", record.payload)
        seen += len(records)
        before = records[-1].id


def event_line(candidate: Candidate) -> str:
    """The event used: where from, messageId, type and event name."""
    payload = candidate.payload if isinstance(candidate.payload, dict) else {}
    parts = [f"messageId {payload.get('messageId', '(none)')}", f"type {payload.get('type')}"]
    if payload.get("event") is not None:
        parts.append(f"event {payload.get('event')}")
    return f"{candidate.source}: " + ", ".join(parts)


def _no_match(
    mapping: Mapping,
    newest: Candidate | None,
    scanned: int,
    failures: dict[str, int],
    from_buffer: bool,
) -> list[str]:
    """Why no event was used, per trigger condition."""
    if newest is None:
        return ["the webhook buffer holds no events; pass one with --event FILE"]
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
    return out


def _failed_labels(trigger: str, event: Any) -> list[str]:
    """The labels of the conditions the event fails (none for a non-object or a bad trigger)."""
    if not isinstance(event, dict):
        return []
    try:
        return [c.label for c in check_conditions(trigger, event) if not c.matched]
    except TriggerSyntaxError:
        return []


def _leaves(node: Node) -> Iterator[Comparison | FunctionCall]:
    """The leaf conditions of a condition tree, left to right."""
    if isinstance(node, And | Or):
        for child in node.children:
            yield from _leaves(child)
    else:
        yield node


def _field_label(path: tuple[str, ...]) -> str:
    """'Event type' for type, the dotted path for properties.x and the like."""
    return _FIELD_LABELS.get(path[0], ".".join(path)) if len(path) == 1 else ".".join(path)


def _describe(value: Any) -> str:
    """'is missing', 'is null' or 'is <value>' as the trigger compares it."""
    if value is UNDEFINED:
        return "is missing"
    if value is None:
        return "is null"
    if isinstance(value, dict | list):
        text = orjson.dumps(value).decode()
        return f"is {text[:80]}{'...' if len(text) > 80 else ''}"
    return f"is {js_string(value)}"
