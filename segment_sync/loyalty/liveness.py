"""Is the loyalty source alive? New rows in the last hour against the same hour on recent days.

A feed that goes silent raises no error anywhere: the sync simply has nothing to send. So the
last hour's new loyalty events (rows the platform committed itself; echoes of Segment events
left out) are compared with the median of the same hour on each of the last `days` days. Fewer
than `min_share` of that median fails. A median under `min_baseline` is not judged (a new store,
or one whose quiet hours are normally near zero): too few rows to tell silence from quiet.
Days before the store existed count as zero, so a new store is not judged for its first days.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from segment_sync.loyalty.records import Stream

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class RowCounter(Protocol):
    def platform_rows_between(self, stream: Stream, since: datetime, until: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class LivenessRule:
    """The documented threshold (settings: maintenance.checks.source_alive_*)."""

    min_share: float = 0.1  # the last hour needs at least this share of the baseline; 0: off
    min_baseline: int = 20  # medians under this many rows an hour are not judged
    days: int = 7


@dataclass(frozen=True, slots=True)
class HourlyRows:
    """New loyalty events in the hour up to `now`, and in the same hour 1..days days before."""

    now: datetime
    last_hour: int
    same_hour: tuple[int, ...]  # newest day first

    @property
    def baseline(self) -> float:
        """The median of the same hour over the recent days."""
        return float(statistics.median(self.same_hour)) if self.same_hour else 0.0


@dataclass(frozen=True, slots=True)
class Liveness:
    """The verdict: passed (alive, or not judged), whether it was judged, and why in words."""

    passed: bool
    judged: bool
    threshold: float
    text: str


def hourly_rows(store: RowCounter, now: datetime, days: int) -> HourlyRows:
    """Count the last hour's new loyalty events and those of the same hour on `days` days."""

    def count(end: datetime) -> int:
        return store.platform_rows_between(Stream.EVENTS, end - HOUR, end)

    same_hour = tuple(count(now - d * DAY) for d in range(1, days + 1))
    return HourlyRows(now, count(now), same_hour)


def judge(rows: HourlyRows, rule: LivenessRule) -> Liveness:
    """Alive unless the last hour holds fewer than min_share of a baseline worth judging."""
    baseline, days = rows.baseline, len(rows.same_hour)
    usual = f"the median of the same hour over the last {days} day(s) is {baseline:g}"
    if baseline < rule.min_baseline:
        return Liveness(
            True,
            False,
            0.0,
            f"not judged: {rows.last_hour} new loyalty event(s) in the last hour; {usual}, under "
            f"the minimum baseline of {rule.min_baseline} (a new or quiet store)",
        )
    threshold = rule.min_share * baseline
    if rows.last_hour >= threshold:
        return Liveness(
            True,
            True,
            threshold,
            f"{rows.last_hour} new loyalty event(s) in the last hour; {usual} "
            f"(at least {rule.min_share:.0%} of it, {threshold:g}, expected)",
        )
    return Liveness(
        False,
        True,
        threshold,
        f"only {rows.last_hour} new loyalty event(s) in the last hour, under {rule.min_share:.0%} "
        f"of the usual ({usual}): is the loyalty platform still writing to the store?",
    )
