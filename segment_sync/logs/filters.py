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

Outbound `Customer ID` matches every request whose batch carried that customer. Inbound `Event
type` matches requests with an `inbound_items` row of that Segment type (same identifier), so the
compiled clause must be used in `SELECT ... FROM inbound_log WHERE ...` without a table alias.
Every value becomes a `?` parameter; no user text is ever spliced into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NoReturn

LogName = Literal["outbound", "inbound"]


class FilterError(ValueError):
    """A filter or time range the user typed cannot be read; the message says what to fix."""


# ---------------------------------------------------------------------------------------------
# Fields and operators
# ---------------------------------------------------------------------------------------------

IS = "is"
IS_NOT = "is not"
IS_IN = "is in"
IS_NOT_IN = "is not in"
CONTAINS = "contains"
NOT_CONTAINS = "does not contain"
COMPARISONS = (">", "<", ">=", "<=")
TEXT_OPERATORS = (IS, IS_NOT, IS_IN, IS_NOT_IN, CONTAINS, NOT_CONTAINS)
NUMBER_OPERATORS = (IS, IS_NOT, IS_IN, IS_NOT_IN, *COMPARISONS)
NEGATED = {IS_NOT: IS, IS_NOT_IN: IS_IN, NOT_CONTAINS: CONTAINS}
LIST_OPERATORS = (IS_IN, IS_NOT_IN)

SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")

# `Pred` builds a never-NULL SQL predicate for a positive operator (is, is in, contains, >, ...)
# from the parsed values; it returns the SQL and its parameters.
Pred = Callable[[str, list[Any]], tuple[str, list[Any]]]


@dataclass(frozen=True)
class Field:
    """One filterable field: its display name, operators and how it becomes SQL."""

    name: str
    operators: tuple[str, ...]
    predicate: Pred
    numeric: bool = False
    allowed: tuple[str, ...] = ()  # closed vocabulary (lower case), checked for is / is in


def _placeholders(values: list[Any]) -> str:
    """`?, ?, ?` for a value list."""
    return ", ".join("?" for _ in values)


def _text(column: str, *, fold_case: bool = False) -> Pred:
    """Predicate on a scalar text column; `fold_case` makes is / is in case-insensitive."""

    def build(op: str, values: list[Any]) -> tuple[str, list[Any]]:
        if op == CONTAINS:
            return f"coalesce(contains(lower({column}), lower(?)), false)", values
        subject = f"lower({column})" if fold_case else column
        params = [v.lower() for v in values] if fold_case else values
        return f"coalesce({subject} IN ({_placeholders(params)}), false)", params

    return build


def _status_code(column: str) -> Pred:
    """Predicate on an integer status code column; values are ints or (low, high) classes."""

    def build(op: str, values: list[Any]) -> tuple[str, list[Any]]:
        if op in COMPARISONS:
            return f"coalesce({column} {op} ?, false)", values
        parts: list[str] = []
        params: list[Any] = []
        codes = [v for v in values if isinstance(v, int)]
        if codes:
            parts.append(f"{column} IN ({_placeholders(codes)})")
            params.extend(codes)
        for low, high in (v for v in values if isinstance(v, tuple)):
            parts.append(f"{column} BETWEEN ? AND ?")
            params.extend([low, high])
        return f"coalesce({' OR '.join(parts)}, false)", params

    return build


def _outbound_customer(op: str, values: list[Any]) -> tuple[str, list[Any]]:
    """Requests whose single customer or batch customer list matches."""
    if op == CONTAINS:
        single = "coalesce(contains(customer_id, ?), false)"
        batch = "coalesce(len(list_filter(customer_ids, lambda c: contains(c, ?))) > 0, false)"
        return f"({single} OR {batch})", [*values, *values]
    marks = _placeholders(values)
    single = f"coalesce(customer_id IN ({marks}), false)"
    # list_contains per value: about 2x faster than list_has_any on 10M-row logs (bench/logs.py)
    batch = " OR ".join("list_contains(customer_ids, ?)" for _ in values)
    return f"({single} OR coalesce({batch}, false))", [*values, *values]


def _inbound_event_type(op: str, values: list[Any]) -> tuple[str, list[Any]]:
    """Inbound requests carrying at least one item of the given Segment type(s)."""
    if op == CONTAINS:
        test, params = "contains(lower(i.event_type), lower(?))", values
    else:
        params = [v.lower() for v in values]
        test = f"lower(i.event_type) IN ({_placeholders(params)})"
    return (
        "EXISTS (SELECT 1 FROM inbound_items AS i "
        f"WHERE i.identifier = inbound_log.identifier AND {test})",
        params,
    )


FIELDS: dict[LogName, tuple[Field, ...]] = {
    "outbound": (
        Field("Identifier", TEXT_OPERATORS, _text("identifier")),
        Field("Customer ID", TEXT_OPERATORS, _outbound_customer),
        Field(
            "Event type",
            TEXT_OPERATORS,
            _text("event_type", fold_case=True),
            allowed=("track", "identify"),
        ),
        Field("Error", TEXT_OPERATORS, _text("error")),
        Field("Status code", NUMBER_OPERATORS, _status_code("status_code"), numeric=True),
    ),
    "inbound": (
        Field("Action", TEXT_OPERATORS, _text("action", fold_case=True)),
        Field("Identifier", TEXT_OPERATORS, _text("identifier")),
        Field("Customer ID", TEXT_OPERATORS, _text("customer_id")),
        Field("Event type", TEXT_OPERATORS, _inbound_event_type, allowed=SEGMENT_TYPES),
        Field("Error", TEXT_OPERATORS, _text("error")),
        Field("Status code", NUMBER_OPERATORS, _status_code("status_code"), numeric=True),
        Field(
            "Status",
            TEXT_OPERATORS,
            _text("status", fold_case=True),
            allowed=("success", "error"),
        ),
    ),
}


def field_names(log: LogName) -> list[str]:
    """The display names of the fields `log` can be filtered by."""
    return [f.name for f in _fields(log)]


def _fields(log: str) -> tuple[Field, ...]:
    """The fields of `log`; FilterError for an unknown log name."""
    try:
        return FIELDS[log]  # type: ignore[index]
    except KeyError:
        raise FilterError(f"unknown log {log!r}; expected 'outbound' or 'inbound'") from None


def _normalise(name: str) -> str:
    """Field-name key: lower case, `_` as space, single spaces."""
    return " ".join(name.replace("_", " ").lower().split())


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
        self.fields = _fields(log)
        self.by_key = {_normalise(f.name): f for f in self.fields}
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
        field = self.by_key.get(_normalise(name))
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
        key = _normalise(region)
        for field in sorted(self.fields, key=lambda f: -len(f.name)):
            prefix = _normalise(field.name)
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
        _fields(log)
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


# ---------------------------------------------------------------------------------------------
# Time ranges
# ---------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])(?:\s+ago)?", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime | None = None, end_of_day: bool = False) -> datetime:
    """An aware UTC datetime from ISO text, `now`, or `30m`/`1h`/`7d`/`2w` ago.

    A bare date is midnight UTC, or the next midnight with `end_of_day` (so `--until 2024-03-01`
    includes that day); a timestamp without an offset is read as UTC.
    """
    text = value.strip()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if text.lower() == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"cannot read time {value!r}; use an ISO date or timestamp (2024-03-01, "
            "2024-03-01T12:00:00Z), 'now', or how long ago: 30m, 1h, 7d, 2w"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_range(
    since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[str, list]:
    """A parameterised SQL clause keeping rows with `since <= timestamp < until` (either optional)."""
    parts: list[str] = []
    params: list[Any] = []
    start = parse_time(since, now=now) if since else None
    end = parse_time(until, now=now, end_of_day=True) if until else None
    if start is not None and end is not None and start >= end:
        raise FilterError(
            f"--since ({start.isoformat()}) must be earlier than --until ({end.isoformat()})"
        )
    # The "date" partition bounds let DuckDB skip whole days of files without opening them.
    if start is not None:
        parts.append('"date" >= ? AND "timestamp" >= ?')
        params.extend([start.astimezone(UTC).date(), start])
    if end is not None:
        parts.append('"date" <= ? AND "timestamp" < ?')
        params.extend([end.astimezone(UTC).date(), end])
    return (" AND ".join(parts) or "TRUE"), params
