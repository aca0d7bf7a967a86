"""The fields the manual's log filters name, their operators, and how each becomes SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

LogName = Literal["outbound", "inbound"]


class FilterError(ValueError):
    """A filter or time range the user typed cannot be read; the message says what to fix."""


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
    """Inbound log rows whose own received event has the given Segment type(s).

    Rows written before the log carried `event_type` fall back to the request's items.
    """
    if op == CONTAINS:
        own, params = "contains(lower(event_type), lower(?))", values
        item = "contains(lower(i.event_type), lower(?))"
    else:
        params = [v.lower() for v in values]
        own = f"lower(event_type) IN ({_placeholders(params)})"
        item = f"lower(i.event_type) IN ({_placeholders(params)})"
    older = (
        "EXISTS (SELECT 1 FROM inbound_items AS i "
        f"WHERE i.identifier = inbound_log.identifier AND {item})"
    )
    return f"coalesce({own}, event_type IS NULL AND {older})", [*params, *params]


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
        # outbound.destinations' name; the single destination's rows have none
        Field("Destination", TEXT_OPERATORS, _text("destination", fold_case=True)),
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
            allowed=("success", "error", "skipped", "unknown"),
        ),
    ),
}


def field_names(log: LogName) -> list[str]:
    """The display names of the fields `log` can be filtered by."""
    return [f.name for f in fields_of(log)]


def fields_of(log: str) -> tuple[Field, ...]:
    """The fields of `log`; FilterError for an unknown log name."""
    try:
        return FIELDS[log]  # type: ignore[index]
    except KeyError:
        raise FilterError(f"unknown log {log!r}; expected 'outbound' or 'inbound'") from None


def normalise_field_name(name: str) -> str:
    """Field-name key: lower case, `_` as space, single spaces."""
    return " ".join(name.replace("_", " ").lower().split())
