"""The one reader of a stored `occurred_at`: every path that reads a row's time goes through it.

The store holds UTC. SQLite hands back whatever text a client wrote (SQLAlchemy's naive
`YYYY-MM-DD HH:MM:SS.ffffff`, Python's sqlite3 adapter's `...+00:00`, `Z`, no seconds, bytes that
are not UTF-8, a number); PostgreSQL hands back a datetime, or, where Python has none to give
(`infinity`, a year past 9999), its text. Any of these is a UTC datetime or an UnreadableTime
naming the value and why: never another exception, so one row's time never stops the rows
beside it. The columnar builder reads only the canonical text itself and leaves every other
form to this reader (columnar_build.STORED_TIME), so both read the same rows the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

_SHOWN = 60  # characters of an unreadable value quoted in its reason


class UnreadableTime(ValueError):
    """A stored time that is not one: the message names the value and why."""

    def __init__(self, value: object, why: str) -> None:
        shown = repr(value)
        if len(shown) > _SHOWN:
            shown = shown[: _SHOWN - 3] + "..."
        super().__init__(f"time {shown} cannot be read: {why}")


def read_time(value: object) -> datetime:
    """`value` (a stored time) as an aware UTC datetime; naive means UTC. Raises UnreadableTime."""
    if value.__class__ is str and len(value) == 26 and value[19] == ".":
        # The stored form, naive UTC: appending the offset parses ~7x faster than
        # .replace(tzinfo=UTC) afterwards. Anything else that is 26 long takes the full read.
        try:
            return datetime.fromisoformat(value + "+00:00")  # type: ignore[operator]
        except ValueError:
            pass
    return _read(value)


def time_or_none(value: object) -> datetime | None:
    """`read_time`, None when the time does not read (routing, attribute histories)."""
    try:
        return read_time(value)
    except UnreadableTime:
        return None


def _read(stored: object) -> datetime:
    value = stored
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode()
        except UnicodeDecodeError as exc:
            raise UnreadableTime(stored, f"it is not UTF-8 text ({exc.reason})") from None
    if isinstance(value, str):
        if value.strip().lstrip("+-").lower() == "infinity":
            raise UnreadableTime(stored, "it is infinite, not a point in time")
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise UnreadableTime(stored, f"not an ISO 8601 date and time ({exc})") from None
    if not isinstance(value, datetime):
        raise UnreadableTime(stored, f"it is a {type(value).__name__}, not a date and time")
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise UnreadableTime(stored, f"out of range once made UTC ({exc})") from None
