"""Which destination a customer's row goes to: the routing attribute as of that row.

A row is routed by the customer's value of `outbound.route_by.attribute` in the newest profile
change that carries it and is not later than the row: for a loyalty event, a profile change
that occurred at or before the event; for a profile change, itself or one before it (by
occurred_at, then id). So a customer who moves (a profile change with the new value) has that
change and every later message sent to the new destination, and every earlier message stays
where it was sent. The history can change after a row is written (a backdated profile change),
so a row's route is computed once and stored (route_decisions.py): each destination, at
whatever progress, routes a row the same way, so no row goes to two destinations and none to
neither. Pure: the history comes from the store.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from segment_sync.loyalty.records import Stream
from segment_sync.settings.destinations import RouteBySettings, as_text

# One customer's values of the attribute: (occurred_at, profile change id, value), oldest first.
History = list[tuple[datetime, int, object]]
_AFTER_EVERY_ID = 2**63  # an event at time t sees every profile change at t


@dataclass(frozen=True, slots=True)
class Route:
    """A row's destination, or None with the reason it has none."""

    destination: str | None
    reason: str | None = None


def value_as_of(
    history: History, stream: Stream, occurred_at: datetime | None, row_id: int
) -> tuple[bool, object]:
    """(known, value) of the attribute for a row; an unreadable time reads the newest value."""
    if not history:
        return False, None
    if occurred_at is None:
        return True, history[-1][2]
    tie = row_id if stream is Stream.PROFILES else _AFTER_EVERY_ID
    at = bisect.bisect_right(history, (occurred_at, tie), key=lambda h: (h[0], h[1]))
    return (True, history[at - 1][2]) if at else (False, None)


def route(
    rule: RouteBySettings,
    history: History,
    stream: Stream,
    customer_id: str | None,
    occurred_at: datetime | None,
    row_id: int,
) -> Route:
    """The destination of one row under `rule`, or why it has none."""
    known, value = value_as_of(history, stream, occurred_at, row_id)
    if known and value is not None and as_text(value) in rule.map:
        return Route(rule.map[as_text(value)])
    if rule.default is not None:
        return Route(rule.default)
    who = f"customer {customer_id}" if customer_id else "a row without a customer ID"
    if not known or value is None:
        seen = f"has no {rule.attribute!r} in any profile change up to this message"
    else:
        seen = f"has {rule.attribute} {as_text(value)!r}, which outbound.route_by.map does not list"
    return Route(
        None,
        f"{who} {seen}, so no Segment destination is known; nothing was sent. Fix: record the "
        f"customer's {rule.attribute} (a profile change), add the value to "
        "outbound.route_by.map or set outbound.route_by.default, then replay",
    )


def routes(
    rule: RouteBySettings,
    histories: Mapping[str, History],
    stream: Stream,
    customer_ids: Sequence[str | None],
    times: Sequence[datetime | None],
    ids: Sequence[int],
) -> list[Route]:
    """`route` of every row of a chunk."""
    return [
        route(rule, histories.get(c or "", []), stream, c, t, i)
        for c, t, i in zip(customer_ids, times, ids, strict=True)
    ]
