"""Hypothesis strategies for what a store's `occurred_at` may hold: time texts in every form a
client may write (offsets, Z, T, no seconds or fraction, seven digits), texts that look like
times and are not (hour 24, second 60, 31 April, year 0 or 10000, infinity), garbage, bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

# Texts at the edges, each a reason a reader once read differently from another.
EDGES = [
    "2026-01-01 10:00:00+00:00", "2026-01-01T10:00:00Z", "2026-01-01 10:00+02:00",
    "2026-01-01 10:00:00.123+02:00", "2026-01-01T10:00:00.12345Z", "2026-01-01 10:00:00",
    "2026-01-01", "2024-06-30 24:00:00.000000", "2024-06-30 24:00:00", "2026-06-30 23:59:60.000000",
    "2023-02-29 10:00:00.000000", "2026-04-31 10:00:00.000000", "2026-00-10 10:00:00.000000",
    "2026-01-01 10:60:00.000000", "0000-01-01 00:00:00.000000", "0001-01-01 00:00:00.000000",
    "1969-12-31 23:59:59.999000", "1970-01-01 00:00:00.000000", "9999-12-31 23:59:59.999999",
    "9999-12-31 23:59:59.999999-05:00", "0001-01-01 00:00:00.000000+05:00",
    "10000-01-01 00:00:00.000000", "12000-01-01 00:00:00+00", "infinity", "-infinity",
    "Infinity", "2026-1-1 1:00:00.000000", " 2026-01-01 10:00:00.000000", "", "yesterday",
    "2026-01-01 10:00:00.000000\x00", "2026-01-01 10:00:00.1234567", "2026-01-01 10:00:00.000000 ",
]  # fmt: skip
_OFFSETS = ["", "", "Z", "+00:00", "-05:00", "+14:00", "+0200", "+00", "-23:59"]


@st.composite
def _formatted(draw: st.DrawFn) -> str:
    """A time written in one of the ISO forms, at any instant from year 1 to 9999."""
    when = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    when = draw(
        st.sampled_from([when, datetime(2026, 1, 1) + (when - datetime(5000, 1, 1)) / 4000])
    )
    date = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    clock = f"{when.hour:02d}:{when.minute:02d}"
    seconds = draw(st.sampled_from(["", f":{when.second:02d}", f":{when.second:02d}"]))
    digits = draw(st.sampled_from([0, 3, 6, 6, 6, 7])) if seconds else 0
    fraction = f".{when.microsecond:06d}{when.microsecond % 10}"[: digits + 1] if digits else ""
    separator = draw(st.sampled_from([" ", " ", "T"]))
    return f"{date}{separator}{clock}{seconds}{fraction}{draw(st.sampled_from(_OFFSETS))}"


def _midnight_24(when: datetime) -> str:
    return f"{when:%Y-%m-%d} 24:00:00.000000"


def time_texts() -> st.SearchStrategy[str]:
    """Text a store's time column may hold: readable or not, never only the stored form."""
    return st.one_of(
        _formatted(),
        st.sampled_from(EDGES),
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
            _midnight_24
        ),
        st.text(max_size=30),
    )


def stored_times() -> st.SearchStrategy[object]:
    """`time_texts`, and the values a driver or client hands over instead: bytes (UTF-8 or
    not), numbers, None, datetimes naive or aware at the ends of the range."""
    aware = st.builds(
        lambda when, minutes: when.replace(tzinfo=timezone(timedelta(minutes=minutes))),
        st.datetimes(),
        st.integers(-23 * 60 - 59, 23 * 60 + 59),
    )
    return st.one_of(
        time_texts(),
        time_texts().map(str.encode),
        st.sampled_from([b"\xff", b"2026-01-01 10:00:00.000000\xfe", b"\xed\xa0\x80"]),
        st.integers() | st.floats() | st.none(),
        st.datetimes() | aware | st.just(datetime.max.replace(tzinfo=UTC)),
    )
