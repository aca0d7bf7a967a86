"""Trigger syntax errors: where a trigger stops parsing and, in words, what was expected there."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lark.exceptions import UnexpectedInput

_EXPECTED_NAMES = {
    "NAME": "a field (type, event, name, userId, anonymousId, properties.x, traits.x, context.x)",
    "STRING": "a string in double quotes",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "OP": "a comparison operator (= != < > <= >=)",
    "NOT": "'!'",
    "CONTAINS": "contains(...)",
    "MATCH": "match(...)",
    "AND": "'and'",
    "OR": "'or'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "$END": "the end of the trigger",
}
_EXPECTED_ORDER = list(_EXPECTED_NAMES)


class TriggerSyntaxError(ValueError):
    """A trigger that does not parse; the message shows where and what was expected."""

    def __init__(
        self,
        text: str,
        position: int,
        problem: str,
        expected: list[str] | None = None,
    ) -> None:
        """Build the message from the trigger text, a 0-based offset and what went wrong."""
        self.text = text
        self.position = max(0, min(position, len(text)))
        self.expected = list(expected or [])
        self.problem = problem
        line_start = text.rfind("\n", 0, self.position) + 1
        line_end = text.find("\n", self.position)
        line_end = len(text) if line_end == -1 else line_end
        self.line = text.count("\n", 0, self.position) + 1
        self.column = self.position - line_start + 1
        where = (
            f"column {self.column}" if self.line == 1 else f"line {self.line}, column {self.column}"
        )
        caret = " " * (self.column - 1) + "^"
        message = f"Invalid trigger at {where}: {problem}\n  {text[line_start:line_end]}\n  {caret}"
        super().__init__(message)


def _syntax_error(text: str, exc: UnexpectedInput) -> TriggerSyntaxError:
    """Translate a lark error into a TriggerSyntaxError that names what was expected."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        expected = _expected_names(exc.allowed or set())
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        hint = " (strings use double quotes)" if char == "'" else ""
        return TriggerSyntaxError(
            text,
            exc.pos_in_stream,
            f"unexpected character {char!r}{hint}; expected {_join(expected)}",
            expected,
        )
    if isinstance(exc, UnexpectedEOF):
        expected = _expected_names(set(exc.expected))
        return TriggerSyntaxError(
            text, len(text), f"the trigger ends too early; expected {_join(expected)}", expected
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    accepts = set(exc.accepts or exc.expected)
    expected = _expected_names(accepts)
    position = len(text) if token.type == "$END" else (token.start_pos or 0)
    got = "the end of the trigger" if token.type == "$END" else repr(str(token))
    history = getattr(exc, "token_history", None) or []
    previous = history[-1] if history else None
    if previous is not None and previous.type == "NAME" and str(previous) in ("and", "or"):
        return TriggerSyntaxError(
            text,
            previous.start_pos or 0,
            f"'{previous}' needs a condition before it; expected {_EXPECTED_NAMES['NAME']}",
            [_EXPECTED_NAMES["NAME"]],
        )
    if token.type in ("AND", "OR") and ({"AND", "OR"} & accepts):
        other = "or" if token.type == "AND" else "and"
        problem = (
            f"'{token}' follows '{other}' at the same level; Segment has no precedence between "
            f"'and' and 'or', so add parentheses, e.g. (a {other} b) {token} c"
        )
        return TriggerSyntaxError(text, position, problem, ["parentheses"])
    if token.type == "NAME" and {"STRING", "NUMBER"} & accepts:
        problem = f'expected {_join(expected)}, got the bare word {got}; quote it: "{token}"'
        return TriggerSyntaxError(text, position, problem, expected)
    return TriggerSyntaxError(text, position, f"expected {_join(expected)}, got {got}", expected)


def _expected_names(terminals: set[str]) -> list[str]:
    """Readable names for lark terminals, in a stable order."""
    known = [name for name in _EXPECTED_ORDER if name in terminals]
    return [_EXPECTED_NAMES[name] for name in known] or sorted(terminals)


def _join(items: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    if len(items) <= 1:
        return items[0] if items else "something else"
    return ", ".join(items[:-1]) + " or " + items[-1]
