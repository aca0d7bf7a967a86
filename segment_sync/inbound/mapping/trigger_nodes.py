"""The condition tree of a parsed trigger and how it evaluates against a Segment event."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from segment_sync.inbound.mapping.js_values import UNDEFINED, js_string, to_number


@dataclass(frozen=True)
class Comparison:
    """``field OP value``."""

    path: tuple[str, ...]
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: str | float | bool | None

    def matches(self, event: dict[str, Any]) -> bool:
        """Evaluate against one Segment event."""
        actual = field_value(event, self.path)
        if self.op in ("=", "!="):
            equal = _equals(actual, self.value)
            return equal if self.op == "=" else not equal
        left, right = to_number(actual), to_number(self.value)
        if math.isnan(left) or math.isnan(right):
            return False
        if self.op == "<":
            return left < right
        if self.op == "<=":
            return left <= right
        if self.op == ">":
            return left > right
        return left >= right


@dataclass(frozen=True)
class FunctionCall:
    """``contains(field, "s")`` / ``match(field, "glob")``, optionally negated with ``!``."""

    name: Literal["contains", "match"]
    path: tuple[str, ...]
    argument: str
    negated: bool = False

    def matches(self, event: dict[str, Any]) -> bool:
        """Evaluate against one Segment event (a non-string field is always false)."""
        actual = field_value(event, self.path)
        if not isinstance(actual, str):
            return False
        if self.name == "contains":
            found = self.argument in actual
        else:
            found = glob_regex(self.argument).fullmatch(actual) is not None
        return not found if self.negated else found


@dataclass(frozen=True)
class And:
    """All children match."""

    children: tuple[Node, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        """Evaluate against one Segment event."""
        return all(child.matches(event) for child in self.children)


@dataclass(frozen=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        """Evaluate against one Segment event."""
        return any(child.matches(event) for child in self.children)


Node = Comparison | FunctionCall | And | Or


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger: its source text and its condition tree."""

    text: str
    root: Node

    def matches(self, event: Any) -> bool:
        """True when the Segment event satisfies the trigger (never for a non-object)."""
        if not isinstance(event, dict):
            return False
        return self.root.matches(event)

    def matcher(self) -> Callable[[Any], bool]:
        """`matches` as one function, with the common conditions worked out once."""
        root = _compiled(self.root)

        def matches(event: Any) -> bool:
            return isinstance(event, dict) and root(event)

        return matches

    def __str__(self) -> str:
        """The trigger as written."""
        return self.text


def _compiled(node: Node) -> Callable[[dict[str, Any]], bool]:
    """`node.matches`, with a quick answer for a top-level field compared with a string (the
    `type = "track"` of most triggers) when the field holds a string; the rest as written."""
    if isinstance(node, And | Or):
        parts = tuple(_compiled(child) for child in node.children)
        if isinstance(node, And):
            return lambda event: all(part(event) for part in parts)
        return lambda event: any(part(event) for part in parts)
    if not (
        isinstance(node, Comparison)
        and node.op in ("=", "!=")
        and isinstance(node.value, str)
        and len(node.path) == 1
    ):
        return node.matches
    key, expected, slow = node.path[0], node.value, node.matches
    equal = node.op == "="

    def matches(event: dict[str, Any]) -> bool:
        actual = event.get(key)
        if type(actual) is str:  # String(actual) is itself
            return (actual == expected) is equal
        return slow(event)

    return matches


def field_value(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a field path, or UNDEFINED."""
    current: Any = event
    for segment in path:
        if isinstance(current, dict):
            current = current.get(segment, UNDEFINED)
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return UNDEFINED
        if current is UNDEFINED:
            return UNDEFINED
    return current


def _equals(actual: Any, expected: str | float | bool | None) -> bool:
    """Segment's ``=``: JavaScript String() equality; null means missing; true/false as strings."""
    if expected is None:
        return actual is UNDEFINED or actual is None
    if actual is UNDEFINED:
        return False
    return js_string(actual) == js_string(expected)


def glob_problem(pattern: str) -> str | None:
    """Why a match() pattern is malformed, or None."""
    try:
        glob_regex(pattern)
    except ValueError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile an FQL glob (* ? [abc] [a-z] [^a] \\x) into an anchored regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("match() pattern ends with a lone '\\'")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "]") else i + 1)
            if end == -1:
                raise ValueError("match() pattern has a '[' without a closing ']'")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            if not body:
                raise ValueError("match() pattern has an empty character class '[]'")
            parts = []
            for piece in re.findall(r"\\.|.-.|.", body, flags=re.DOTALL):
                if len(piece) == 3 and piece[1] == "-":
                    if piece[0] > piece[2]:
                        raise ValueError(f"match() pattern has a reversed range '{piece}'")
                    parts.append(re.escape(piece[0]) + "-" + re.escape(piece[2]))
                else:
                    parts.append(re.escape(piece[-1]))
            out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), flags=re.DOTALL)
