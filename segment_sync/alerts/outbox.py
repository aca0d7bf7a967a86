"""Which failures a tick still has to post, and the cursor that makes each one post once.

The cursor is the id of the last event handled (posted, given up on, or needing no alert). An
alert the webhook refused keeps the cursor in front of it, so the next tick tries again; after
`max_failed_ticks` such ticks it is given up, loudly, so one bad alert cannot block the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from segment_sync.alerts.message import Failure


class AlertNotDelivered(Exception):
    """`send` did not get the alert through; the message says why and never holds a secret."""


@dataclass(frozen=True, slots=True)
class AlertCursor:
    after: int  # id of the last event handled
    failed_ticks: int = 0  # ticks that could not post the alert right after `after`

    def to_json(self) -> str:
        return orjson.dumps({"after": self.after, "failed_ticks": self.failed_ticks}).decode()

    @staticmethod
    def from_json(text: str | None) -> AlertCursor | None:
        """The cursor a tick saved, or None for none (or one this code did not write)."""
        try:
            data = orjson.loads(text or "")
            return AlertCursor(int(data["after"]), int(data.get("failed_ticks", 0)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Pending:
    """One event after the cursor: a failure to post, or None when it needs no alert."""

    id: int
    failure: Failure | None


@dataclass(slots=True)
class TickOutcome:
    cursor: AlertCursor
    sent: list[Failure] = field(default_factory=list)
    problem: str | None = None  # why posting stopped early (redacted), for the tick's log
    gave_up: Failure | None = None

    def summary(self) -> str:
        """One line for the tick's skip reason."""
        parts = [f"posted {len(self.sent)} alert(s)"]
        parts += [f"{f.name} (run {f.run_id})" for f in self.sent]
        text = ": ".join([parts[0], ", ".join(parts[1:])]) if self.sent else parts[0]
        return f"{text}; {self.problem}" if self.problem else text


def deliver(
    pending: Iterable[Pending],
    cursor: AlertCursor,
    send: Callable[[Failure], None],
    *,
    max_alerts: int,
    max_failed_ticks: int,
    budget_s: float,
) -> TickOutcome:
    """Post the pending failures in order until one fails, `max_alerts` are sent or the time
    budget is spent (the rest wait for the next tick); the cursor to save after this tick."""
    outcome = TickOutcome(cursor)
    started = time.monotonic()
    for item in pending:
        if item.failure is None:
            outcome.cursor = AlertCursor(item.id)
            continue
        if len(outcome.sent) >= max_alerts or time.monotonic() - started > budget_s:
            break
        try:
            send(item.failure)
        except AlertNotDelivered as exc:
            ticks = outcome.cursor.failed_ticks + 1
            what = f"the alert for {item.failure.name} (run {item.failure.run_id})"
            if ticks >= max_failed_ticks:
                outcome.cursor = AlertCursor(item.id)
                outcome.gave_up = item.failure
                outcome.problem = f"gave up on {what} after {ticks} tick(s): {exc}"
            else:
                outcome.cursor = AlertCursor(outcome.cursor.after, ticks)
                outcome.problem = (
                    f"{what} was not delivered ({ticks} of {max_failed_ticks} tick(s)); "
                    f"the next tick tries again: {exc}"
                )
            break
        outcome.cursor = AlertCursor(item.id)
        outcome.sent.append(item.failure)
    return outcome
