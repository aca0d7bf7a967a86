"""The source-alive rule on a real loyalty store (SQLite and PostgreSQL): the last hour's new
loyalty events against the median of the same hour over the recent days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segment_sync.loyalty.liveness import LivenessRule, hourly_rows, judge
from segment_sync.loyalty.records import ORIGIN_SEGMENT, NewEvent
from segment_sync.loyalty.store import LoyaltyStore

NOW = datetime(2026, 12, 6, 15, 0, 0, tzinfo=UTC)
RULE = LivenessRule(min_share=0.1, min_baseline=20, days=7)


def add(store: LoyaltyStore, end: datetime, count: int, origin: str = "loyalty") -> None:
    """`count` events spread over the hour before `end`."""
    step = timedelta(hours=1) / (count + 1)
    store.append_events(
        [
            NewEvent(f"c-{i}", "point_add", {}, occurred_at=end - (i + 1) * step, origin=origin)
            for i in range(count)
        ]
    )


def busy_week(store: LoyaltyStore, per_hour: int = 40, days: int = 7) -> None:
    for day in range(1, days + 1):
        add(store, NOW - timedelta(days=day), per_hour)


def test_a_silent_hour_after_a_busy_week_fails(store):
    busy_week(store)
    verdict = judge(hourly_rows(store, NOW, 7), RULE)
    assert not verdict.passed and verdict.judged
    assert "only 0 new loyalty event(s) in the last hour" in verdict.text
    assert "median of the same hour over the last 7 day(s) is 40" in verdict.text


def test_an_hour_like_the_usual_passes(store):
    busy_week(store)
    add(store, NOW, 35)
    rows = hourly_rows(store, NOW, 7)
    assert (rows.last_hour, rows.same_hour) == (35, (40,) * 7)
    verdict = judge(rows, RULE)
    assert verdict.passed and verdict.judged


def test_an_hour_under_the_share_of_the_median_fails(store):
    busy_week(store)
    add(store, NOW, 3)  # under 10% of 40
    assert not judge(hourly_rows(store, NOW, 7), RULE).passed


def test_a_quiet_store_under_the_minimum_baseline_is_not_judged(store):
    busy_week(store, per_hour=5)
    verdict = judge(hourly_rows(store, NOW, 7), RULE)
    assert verdict.passed and not verdict.judged
    assert "under the minimum baseline of 20" in verdict.text


def test_a_new_store_with_one_busy_day_is_not_judged(store):
    add(store, NOW - timedelta(days=1), 500)  # the median counts the six empty days
    verdict = judge(hourly_rows(store, NOW, 7), RULE)
    assert verdict.passed and not verdict.judged


def test_echoes_of_segment_events_do_not_keep_the_source_alive(store):
    busy_week(store)
    add(store, NOW, 40, origin=ORIGIN_SEGMENT)  # only the inbound path still writes
    rows = hourly_rows(store, NOW, 7)
    assert rows.last_hour == 0 and not judge(rows, RULE).passed


def test_the_hour_is_half_open_an_event_at_now_is_not_in_it(store):
    store.append_events(
        [
            NewEvent("c-1", "point_add", {}, occurred_at=NOW - timedelta(hours=1)),
            NewEvent("c-2", "point_add", {}, occurred_at=NOW),
        ]
    )
    assert hourly_rows(store, NOW, 1).last_hour == 1


def test_a_share_of_zero_turns_the_check_off(store):
    busy_week(store)
    assert judge(hourly_rows(store, NOW, 7), LivenessRule(min_share=0.0)).passed
