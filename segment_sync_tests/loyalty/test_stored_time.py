"""The one reader of stored times: any value is a UTC datetime or an UnreadableTime naming it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings

from segment_sync.loyalty.stored_time import UnreadableTime, _read, read_time, time_or_none
from segment_sync_tests.loyalty.time_texts import EDGES, stored_times


@settings(max_examples=400)
@example(value="9999-12-31 23:59:59.999999-05:00")
@example(value=b"2026-01-01 10:00:00.000000\xfe")
@example(value="infinity")
@given(value=stored_times())
def test_any_stored_value_is_a_utc_time_or_a_reason_naming_it(value):
    try:
        when = read_time(value)
    except UnreadableTime as exc:
        assert str(exc).startswith("time ") and " cannot be read: " in str(exc)
        assert time_or_none(value) is None
        with pytest.raises(UnreadableTime):
            _read(value)  # the shortcut for the stored form refuses what the full read does
        return
    assert when.tzinfo is UTC
    assert when == _read(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01 10:00:00+00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),  # Python's sqlite3
        ("2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01 10:00+02:00", datetime(2026, 1, 1, 8, tzinfo=UTC)),
        ("2026-01-01T10:00:00.12345Z", datetime(2026, 1, 1, 10, 0, 0, 123450, tzinfo=UTC)),
        ("2026-01-01 10:00:00.000001", datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=UTC)),
        ("2026-01-01 10:00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (b"2026-01-01 10:00:00.000000", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_each_iso_form_reads_as_its_instant_in_utc(text, expected):
    assert read_time(text) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("9999-12-31 23:59:59.999999-05:00", "out of range once made UTC"),
        ("2024-06-30 24:00:00.000000", "hour must be in 0..23"),
        ("0000-01-01 00:00:00.000000", "year 0 is out of range"),
        ("infinity", "infinite"),
        ("12000-01-01 00:00:00+00", "not an ISO 8601 date and time"),
        (b"\xff", "not UTF-8"),
        (1767225600, "it is a int"),
        (None, "it is a NoneType"),
    ],
)
def test_a_time_that_does_not_read_says_which_and_why(value, why):
    with pytest.raises(UnreadableTime) as raised:
        read_time(value)
    assert why in str(raised.value)
    assert repr(value)[:20] in str(raised.value)


def test_the_edges_are_all_read_or_refused_without_another_exception():
    for text in EDGES:
        time_or_none(text)
