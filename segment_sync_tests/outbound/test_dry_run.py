"""Planning an outbound dry run: the same messages and requests a real run sends, none sent."""

from __future__ import annotations

from datetime import UTC, datetime

from segment_sync import factory
from segment_sync.loyalty.records import LoyaltyEvent, NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.build import built_from_records
from segment_sync.outbound.dry_run import StreamDryRun, add_chunk, plan_outbound
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings, load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.syncs import outbound_sync

BARE = Settings.model_validate({"outbound": {"event_sync": ["point_add"]}})


def _settings(write_settings, segment_standin, events: int, **outbound):
    path = write_settings(outbound={"base_url": segment_standin.url, **outbound})
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent(f"c-{i}", "point_add", {"n": i}) for i in range(events)])
    return settings, store


def _plan(settings, store):
    state = factory.outbound_state(settings, WRITE_KEY, store_url=store.url)
    return plan_outbound(settings, store, state, [Stream.EVENTS], Redactor([WRITE_KEY]))


def test_requests_and_bytes_equal_what_a_real_run_then_sends(write_settings, segment_standin):
    settings, store = _settings(write_settings, segment_standin, 700, chunk_size=300)
    (planned,) = _plan(settings, store).streams
    sent = outbound_sync(settings).run(Stream.EVENTS, "run-real").counts
    assert (planned.messages, planned.requests, planned.bytes) == (
        sent.sent,
        sent.requests,
        sent.bytes,
    )


def test_a_dry_run_sends_nothing_to_segment(write_settings, segment_standin):
    settings, store = _settings(write_settings, segment_standin, 20)
    _plan(settings, store)
    assert segment_standin.stats()["requests"] == 0


def test_a_dry_run_starts_at_the_watermark_of_an_earlier_run(write_settings, segment_standin):
    settings, store = _settings(write_settings, segment_standin, 10)
    outbound_sync(settings).run(Stream.EVENTS, "run-1")
    store.append_events([NewEvent("c-x", "point_add", {}) for _ in range(4)])
    (planned,) = _plan(settings, store).streams
    assert (planned.watermark, planned.upto, planned.messages) == (10, 14, 4)


def test_more_than_2500_messages_need_a_second_request():
    plan = StreamDryRun("events", "track")
    built = built_from_records([_event_row(i) for i in range(1, 2502)], BARE, Stream.EVENTS)
    add_chunk(plan, built, [], Redactor())
    assert (plan.messages, plan.requests) == (2501, 2)


def test_at_most_three_sample_messages_are_kept():
    plan = StreamDryRun("events", "track")
    samples: list[str] = []
    built = built_from_records([_event_row(i) for i in range(1, 11)], BARE, Stream.EVENTS)
    add_chunk(plan, built, samples, Redactor())
    add_chunk(plan, built, samples, Redactor())
    assert len(samples) == 3 and samples[0].startswith('{"type":"track"')


def _event_row(i: int) -> LoyaltyEvent:
    return LoyaltyEvent(i, f"c-{i}", None, "point_add", {}, datetime(2026, 1, 1, tzinfo=UTC))
