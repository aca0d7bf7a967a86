"""Time ranges for the log commands: ISO text, 'now' or '30m ago' to a SQL clause on the partitioned logs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from segment_sync.logs.filter_fields import (
    FilterError,
)

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])(?:\s+ago)?", re.IGNORECASE)


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# A bound beyond what a datetime holds (`99999999999d` ago, the day after 9999-12-31) is the
# earliest or latest instant there is: the user asked for everything on that side.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


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
        try:
            amount, unit = int(relative.group(1)), relative.group(2).lower()
            return now - timedelta(**{_UNITS[unit]: amount})
        except (OverflowError, ValueError):  # longer ago than year 1 (or than int() reads)
            return EARLIEST
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if not end_of_day:
                return start
            return start + timedelta(days=1) if day < date.max else LATEST
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"cannot read time {value!r}; use an ISO date or timestamp (2024-03-01, "
            "2024-03-01T12:00:00Z), 'now', or how long ago: 30m, 1h, 7d, 2w"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC; 9999-12-31-14:00 after
        return EARLIEST if moment.utcoffset() > timedelta(0) else LATEST


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
