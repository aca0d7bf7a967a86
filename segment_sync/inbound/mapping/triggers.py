"""Segment Destination Actions triggers: parse and evaluate the subscription language.

The reference is what Segment runs for every action subscription:
``validate(parseFql(subscribe), event)`` from ``@segment/destination-subscriptions``
(lexer ``@segment/fql-ts``). Its semantics, reproduced here:

* ``=`` / ``!=`` compare ``String(actual)`` with ``String(expected)`` as JavaScript does, so
  ``properties.total = 10`` matches ``10``, ``10.0`` and ``"10"``; ``!=`` is true when the field is
  missing. ``x = null`` means "missing or null", ``x != null`` means "present and not null";
  ``x = true`` / ``x = false`` match the boolean or the string ``"true"`` / ``"false"``.
* ``<`` ``<=`` ``>`` ``>=`` compare ``Number(actual)`` with ``Number(expected)``: numeric strings
  such as ``"5"`` count as numbers (Segment's own tests rely on it); a missing field or a
  non-numeric string is ``NaN`` and compares false.
* ``contains(f, "s")`` and ``match(f, "glob")`` need a string field (anything else is false), as do
  their negations ``!contains`` and ``!match``. Matching is case-sensitive. ``match`` is FQL's glob
  (``*``, ``?``, ``[abc]``, ``[a-z]``, ``\\x``); for the patterns Segment's UI writes (``"abc*"`` and
  ``"*abc"``) it agrees with Segment's starts-with / ends-with.
* Fields: ``type``, ``event``, ``name``, ``userId``, ``anonymousId`` and dotted paths under
  ``properties``, ``traits`` and ``context``. A path segment may escape any character with ``\\``
  (``properties.product\\ 1.price``), as Segment's generator writes it. Strings are in double quotes
  and, as in Segment, have no escape sequences.

Where Segment's hand-written parser silently does something surprising, this parser refuses the
trigger with a readable error instead: ``and`` and ``or`` mixed at one level without parentheses
(Segment combines the whole level with the last operator it saw), unknown fields (Segment drops
the condition), bare words as values, single-quoted strings, ``!`` before anything but
``contains``/``match``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from segment_sync.inbound.mapping.trigger_errors import (
    _EXPECTED_NAMES,
    TriggerSyntaxError,
    _syntax_error,
)
from segment_sync.inbound.mapping.trigger_nodes import (
    And,
    Comparison,
    FunctionCall,
    Node,
    Or,
    Trigger,
    glob_problem,
)

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

__all__ = [
    "And",
    "Comparison",
    "FunctionCall",
    "Or",
    "Trigger",
    "TriggerSyntaxError",
    "parse_trigger",
    "trigger_matches",
]

SCALAR_FIELDS = ("type", "event", "name", "userId", "anonymousId")
OBJECT_FIELDS = ("properties", "traits", "context")

_GRAMMAR = r"""
?start: expr
?expr: atom
     | and_chain
     | or_chain
and_chain: atom (AND atom)+
or_chain: atom (OR atom)+
?atom: comparison
     | call
     | "(" expr ")"
comparison: path OP value
call: [NOT] (CONTAINS | MATCH) "(" path "," STRING ")"
path: NAME ("." NAME)*
?value: STRING | NUMBER | TRUE | FALSE | NULL

OP: "!=" | "<=" | ">=" | "=" | "<" | ">"
NOT: "!"
CONTAINS: "contains"
MATCH: "match"
AND: "and"
OR: "or"
TRUE: "true"
FALSE: "false"
NULL: "null"
NAME: /(?:\\.|[A-Za-z0-9_\-])+/
STRING: /"[^"]*"/
NUMBER: /[+-]?[0-9]+(?:\.[0-9]+)?/
%ignore /[ \t\r\n]+/
"""


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The trigger parser, built on first use: settings without mappings never need lark."""
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=True)


@lru_cache(maxsize=1024)
def parse_trigger(text: str) -> Trigger:
    """Parse a trigger; raise TriggerSyntaxError with the position and what was expected."""
    if not isinstance(text, str):
        raise TypeError(f"a trigger is a string, got {type(text).__name__}")
    if not text.strip():
        raise TriggerSyntaxError(text, len(text), 'the trigger is empty; e.g. type = "track"')
    from lark.exceptions import UnexpectedInput

    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return Trigger(text=text, root=_build(text, tree))


def trigger_matches(text: str, event: Any) -> bool:
    """Evaluate a trigger; a trigger that does not parse matches nothing (as in Segment)."""
    return trigger_matcher(text)(event)


def trigger_matcher(text: str) -> Callable[[Any], bool]:
    """`trigger_matches` of `text` as a function of the event, made once per trigger."""
    try:
        return _matcher(text)
    except (TriggerSyntaxError, TypeError):
        return _never


@lru_cache(maxsize=1024)
def _matcher(text: str) -> Callable[[Any], bool]:
    return parse_trigger(text).matcher()


def _never(_event: Any) -> bool:
    return False


# --- parse tree -> nodes -------------------------------------------------------------------------


def _build(text: str, tree: Tree | Token) -> Node:
    """Turn a lark tree into condition nodes, checking fields and values."""
    from lark import Tree

    assert isinstance(tree, Tree)
    kind = tree.data
    if kind == "and_chain":
        return And(tuple(_build(text, c) for c in tree.children if isinstance(c, Tree)))
    if kind == "or_chain":
        return Or(tuple(_build(text, c) for c in tree.children if isinstance(c, Tree)))
    if kind == "comparison":
        path_tree, op_token, value_token = tree.children
        path = _path(text, path_tree)
        op = str(op_token)
        value = _value(value_token)
        if op not in ("=", "!=") and value_token.type not in ("NUMBER", "STRING"):
            raise TriggerSyntaxError(
                text,
                value_token.start_pos,
                f"'{op}' compares numbers; expected a number, got {value_token}",
                [_EXPECTED_NAMES["NUMBER"]],
            )
        return Comparison(path=path, op=op, value=value)  # type: ignore[arg-type]
    if kind == "call":
        not_token, name_token, path_tree, arg_token = tree.children
        argument = str(arg_token)[1:-1]
        if name_token.type == "MATCH":
            problem = glob_problem(argument)
            if problem:
                raise TriggerSyntaxError(text, arg_token.start_pos, problem)
        return FunctionCall(
            name=str(name_token),  # type: ignore[arg-type]
            path=_path(text, path_tree),
            argument=argument,
            negated=not_token is not None,
        )
    raise AssertionError(f"unexpected parse node {kind}")  # pragma: no cover


def _path(text: str, tree: Tree) -> tuple[str, ...]:
    """Unescape and check a field path: a known root, sub-fields only under objects."""
    from lark import Token

    tokens = [t for t in tree.children if isinstance(t, Token)]
    segments = tuple(re.sub(r"\\(.)", r"\1", str(t), flags=re.DOTALL) for t in tokens)
    root, first = segments[0], tokens[0]
    if root in SCALAR_FIELDS:
        if len(segments) > 1:
            raise TriggerSyntaxError(
                text,
                tokens[1].start_pos,
                f"'{root}' is a plain value and has no sub-fields",
                ["a comparison operator", "','", "')'"],
            )
        return segments
    if root in OBJECT_FIELDS:
        if len(segments) == 1:
            raise TriggerSyntaxError(
                text,
                first.end_pos if first.end_pos is not None else first.start_pos,
                f"'{root}' needs a field name, e.g. {root}.total",
                ["'.'"],
            )
        return segments
    raise TriggerSyntaxError(
        text,
        first.start_pos,
        f"unknown field '{root}'; expected {_EXPECTED_NAMES['NAME']}",
        [_EXPECTED_NAMES["NAME"]],
    )


def _value(token: Token) -> str | float | bool | None:
    """The Python value of a literal token."""
    if token.type == "STRING":
        return str(token)[1:-1]
    if token.type == "NUMBER":
        return float(token)
    if token.type == "TRUE":
        return True
    if token.type == "FALSE":
        return False
    return None
