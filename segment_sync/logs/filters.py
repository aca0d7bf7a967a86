"""The manual's log filters ("Event type is in track and Status code is not 200") compiled to SQL.

Grammar (keywords and field names are case-insensitive; `_` may stand for a space in field names):

    filter     := condition ( "and" condition )*          blank text matches every row
    condition  := field operator value
    operator   := "is" | "is not" | "is in" | "is not in" | "contains" | "does not contain"
                | ">" | "<" | ">=" | "<="                  (the comparisons: Status code only)
    value      := item                                     for is, is not, contains, ...
                | item ( "," item )*                       for is in, is not in
    item       := '"' text '"'                             \\" and \\\\ escape inside quotes
                | bare text                                up to " and " (or "," in a list)

Quote a value to include " and ", a comma in a list, or leading/trailing spaces. Single quotes are
ordinary characters. Status code values are numbers (500) or classes (5xx); `Status code is 5xx`
matches 500-599. Matching: `contains` is case-insensitive everywhere; `is` is case-insensitive for
Event type, Action and Status and exact for the other fields. A negated condition (`is not`,
`is not in`, `does not contain`) is exactly the rows the positive one does not match, so rows with
no value (no error, no HTTP answer) match `Error does not contain x` and `Status code is not 200`.

Outbound `Customer ID` matches every request whose batch carried that customer. Inbound rows are
per event, so inbound `Event type` matches each row's own Segment type; rows older than that
column fall back to their request's `inbound_items`, so the compiled clause must be used in
`SELECT ... FROM inbound_log WHERE ...` without a table alias.
Every value becomes a `?` parameter; no user text is ever spliced into the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from segment_sync.logs.filter_fields import (
    COMPARISONS,
    CONTAINS,
    IS,
    IS_NOT,
    LIST_OPERATORS,
    NEGATED,
    NOT_CONTAINS,
    TEXT_OPERATORS,
    Field,
    FilterError,
    LogName,
    fields_of,
    normalise_field_name,
)

# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

# The earliest operator in a condition; word operators need spaces around them, the longest
# spelling at a position wins (alternation order).
_OPERATOR = re.compile(
    r"\s+(?P<word>is\s+not\s+in|is\s+in|is\s+not|is|does\s+not\s+contain|contains)(?=\s|$)"
    r"|\s*(?P<symbol>>=|<=|>|<)",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and(?=\s|$)", re.IGNORECASE)
_LEADING_AND = re.compile(r"and(?=\s|$)", re.IGNORECASE)
_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """One parsed `field operator value(s)` condition."""

    field: Field
    operator: str
    values: list[Any]


class _Parser:
    """A hand-written scanner over the filter text (small grammar, precise error messages)."""

    def __init__(self, text: str, log: LogName) -> None:
        """Prepare to parse `text` against `log`'s fields."""
        self.text = text
        self.log = log
        self.fields = fields_of(log)
        self.by_key = {normalise_field_name(f.name): f for f in self.fields}
        self.pos = 0

    def parse(self) -> list[Condition]:
        """Every condition, in order; FilterError on the first problem."""
        conditions = [self._condition(first=True)]
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                return conditions
            match = _LEADING_AND.match(self.text, self.pos)
            if not match:
                raise FilterError(
                    f"unexpected text {self._rest()!r} after a quoted value; "
                    "expected 'and' or the end of the filter"
                )
            self.pos = match.end()
            self._skip_space()
            if self.pos >= len(self.text):
                raise FilterError("the filter ends with 'and'; add a condition after it")
            conditions.append(self._condition(first=False))

    def _condition(self, *, first: bool) -> Condition:
        """`field operator value`, starting at the current position."""
        self._skip_space()
        end = _AND.search(self.text, self.pos)
        region = self.text[self.pos : end.start() if end else len(self.text)]
        match = _OPERATOR.search(region)
        if match is None or not region[: match.start()].strip():
            self._no_operator(region, first=first)
        name = region[: match.start()].strip()
        field = self.by_key.get(normalise_field_name(name))
        if field is None:
            hint = "" if first else '; to match text containing " and ", put it in double quotes'
            raise FilterError(f"unknown field {name!r}; {self._field_list()}{hint}")
        operator = " ".join((match.group("word") or match.group("symbol")).lower().split())
        if operator not in field.operators:
            raise FilterError(
                f"operator {operator!r} does not apply to {field.name}; "
                f"{field.name} operators: {', '.join(field.operators)}"
            )
        self.pos += match.end()
        values = self._values(field, operator)
        return Condition(field, operator, values)

    def _no_operator(self, region: str, *, first: bool) -> NoReturn:
        """Raise the clearest error for a condition with no recognisable operator."""
        key = normalise_field_name(region)
        for field in sorted(self.fields, key=lambda f: -len(f.name)):
            prefix = normalise_field_name(field.name)
            if key == prefix:
                raise FilterError(
                    f"missing operator and value after {field.name}; "
                    f"{field.name} operators: {', '.join(field.operators)}"
                )
            if key.startswith(prefix + " "):
                word = key[len(prefix) + 1 :].split()[0]
                raise FilterError(
                    f"unknown operator {word!r} after {field.name}; "
                    f"{field.name} operators: {', '.join(field.operators)}"
                )
        hint = "" if first else '; to match text containing " and ", put it in double quotes'
        raise FilterError(
            f"cannot read condition {region.strip()!r}: expected '<field> <operator> <value>', "
            f"e.g. 'Event type is in track'; {self._field_list()}; "
            f"operators: {', '.join((*TEXT_OPERATORS, *COMPARISONS))}{hint}"
        )

    def _field_list(self) -> str:
        """`outbound log fields: Identifier, ...`."""
        return f"{self.log} log fields: {', '.join(f.name for f in self.fields)}"

    def _values(self, field: Field, operator: str) -> list[Any]:
        """The value, or the comma-separated values of a list operator, converted for `field`."""
        is_list = operator in LIST_OPERATORS
        raw = [self._item(field, operator, in_list=is_list)]
        while is_list:
            self._skip_space()
            if not self.text.startswith(",", self.pos):
                break
            self.pos += 1
            raw.append(self._item(field, operator, in_list=True))
        return [self._convert(field, operator, value) for value in raw]

    def _item(self, field: Field, operator: str, *, in_list: bool) -> str:
        """One quoted or bare value."""
        self._skip_space()
        if self.text.startswith('"', self.pos):
            return self._quoted()
        stop = len(self.text)
        end = _AND.search(self.text, self.pos)
        if end:
            stop = end.start()
        if in_list:
            comma = self.text.find(",", self.pos, stop)
            if comma >= 0:
                stop = comma
        value = self.text[self.pos : stop].strip()
        if not value:
            raise FilterError(f"missing value after '{field.name} {operator}'")
        self.pos = stop
        return value

    def _quoted(self) -> str:
        """A double-quoted value; `\\"` and `\\\\` are escapes."""
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                return "".join(chars)
            chars.append(char)
        raise FilterError(f"unterminated quoted value {self.text[start:]!r}; add the closing '\"'")

    def _convert(self, field: Field, operator: str, value: str) -> Any:
        """Check and convert one value: status codes to int or class range, vocabularies."""
        if field.numeric:
            return _status_value(field, operator, value)
        closed = field.allowed and operator in (IS, IS_NOT, *LIST_OPERATORS)
        if closed and value.lower() not in field.allowed:
            raise FilterError(f"{field.name} {value!r} is not one of: {', '.join(field.allowed)}")
        if operator in (CONTAINS, NOT_CONTAINS) and value == "":
            raise FilterError(f"missing value after '{field.name} {operator}'")
        return value

    def _skip_space(self) -> None:
        """Advance past whitespace."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _rest(self) -> str:
        """The unparsed text, shortened for an error message."""
        rest = self.text[self.pos :]
        return rest if len(rest) <= 40 else rest[:40] + "..."


def _status_value(field: Field, operator: str, value: str) -> int | tuple[int, int]:
    """A status code (int) or, for is / is in, a class like 5xx as an inclusive range."""
    klass = _STATUS_CLASS.fullmatch(value)
    if klass and operator not in COMPARISONS:
        low = int(klass.group(1)) * 100
        return (low, low + 99)
    try:
        code = int(value)
    except ValueError:
        classes = " or a class like 5xx" if operator not in COMPARISONS else ""
        raise FilterError(
            f"{field.name} must be a number like 500{classes}, got {value!r}"
        ) from None
    if not 100 <= code <= 999:
        raise FilterError(f"{field.name} must be between 100 and 999, got {code}")
    return code


def parse_filter(text: str, log: LogName) -> list[Condition]:
    """The conditions of a filter; an empty list for blank text."""
    if not text or not text.strip():
        fields_of(log)
        return []
    return _Parser(text, log).parse()


def compile_filter(text: str, log: LogName) -> tuple[str, list]:
    """A parameterised SQL WHERE clause (`?` placeholders) and its parameters for `text`."""
    conditions = parse_filter(text, log)
    if not conditions:
        return "TRUE", []
    parts: list[str] = []
    params: list[Any] = []
    for condition in conditions:
        positive = NEGATED.get(condition.operator, condition.operator)
        sql, values = condition.field.predicate(positive, condition.values)
        parts.append(f"NOT ({sql})" if positive != condition.operator else f"({sql})")
        params.extend(values)
    return " AND ".join(parts), params
