"""A trigger explained in the UI's words: each condition, whether an event meets it, and why not.

Used by the mapping preview ("condition 'Event type is track': event type is identify"); pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from segment_sync.inbound.mapping.js_values import UNDEFINED, js_string
from segment_sync.inbound.mapping.trigger_errors import TriggerSyntaxError
from segment_sync.inbound.mapping.trigger_nodes import (
    And,
    Comparison,
    FunctionCall,
    Node,
    Or,
    field_value,
)
from segment_sync.inbound.mapping.triggers import parse_trigger

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
class ConditionCheck:
    """One leaf condition of a trigger against one event."""

    label: str  # the condition in the UI's words, e.g. "Event type is track"
    matched: bool
    actual: str  # what the event holds, e.g. "event type is identify"

    def line(self) -> str:
        """E.g. condition 'Event type is track': event type is identify."""
        return f"condition '{self.label}': {self.actual}"


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


def judge(trigger: str, event: Any) -> tuple[bool, list[str]]:
    """(the trigger matches, else the labels of the conditions the event fails)."""
    if matches(trigger, event):
        return True, []
    return False, failed_labels(trigger, event)


def failed_labels(trigger: str, event: Any) -> list[str]:
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
