"""Reconciliation: events the sync passed without delivering are found and sent, once."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson
import pytest

from segment_sync import factory
from segment_sync.definitions import build_definitions
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import ORIGIN_SEGMENT, NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events, profile_changes
from segment_sync.outbound.reconcile import find_undelivered, reconcile_events
from segment_sync.outbound.results import OutboundFailed
from segment_sync.outbound.sync import OutboundSync
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.syncs import outbound_sync

DAY = timedelta(hours=24)


def insert_event(store: LoyaltyStore, id_: int, action: str = "point_add", **columns) -> None:
    """Commit an event with an explicit id, as an out-of-order commit leaves it."""
    row = {
        "id": id_,
        "customer_id": "c-late",
        "external_customer_id": None,
        "action": action,
        "data": orjson.dumps({"points": id_}).decode(),
        "occurred_at": datetime.now(UTC) - timedelta(minutes=5),
        "origin": "loyalty",
        **columns,
    }
    with store.engine.begin() as conn:
        conn.execute(loyalty_events.insert().values(**row))


def synced(path) -> tuple[OutboundSync, str]:
    """An OutboundSync on the settings at `path`, and the logs directory."""
    sync = outbound_sync(path)
    return sync, sync.settings.logs.dir


@pytest.fixture
def passed_gap(write_settings, segment_standin):
    """Events 1-3 and 10 delivered (watermark 10); then id 5 commits into the gap behind it."""
    path = write_settings(outbound={"base_url": segment_standin.url})
    sync, logs_dir = synced(path)
    sync.store.append_events([NewEvent(f"c-{i}", "point_add", {"points": i}) for i in range(3)])
    insert_event(sync.store, 10)
    assert sync.run(Stream.EVENTS, "run-regular").watermark_after == 10
    insert_event(sync.store, 5)
    return sync, logs_dir


def sent_source_ids(standin) -> list[int]:
    return sorted(int(m["messageId"].split("-")[2]) for m in standin.messages)


def test_an_event_committed_behind_the_watermark_is_sent_by_reconciliation(
    passed_gap, segment_standin
):
    sync, logs_dir = passed_gap
    done = reconcile_events(sync, logs_dir, "run-reconcile", DAY)
    assert [e.id for e in done.found.events] == [5]
    assert done.sent.counts.sent == 1
    assert sent_source_ids(segment_standin) == [1, 2, 3, 5, 10]
    with connect(logs_dir) as con:
        row = con.execute(
            "SELECT source_id, outcome, run_id FROM outbound_messages WHERE run_id = 'run-reconcile'"
        ).fetchall()
    assert row == [(5, "delivered", "run-reconcile")]


def test_a_second_reconciliation_finds_nothing_and_sends_nothing(passed_gap, segment_standin):
    sync, logs_dir = passed_gap
    reconcile_events(sync, logs_dir, "run-reconcile-1", DAY)
    again = reconcile_events(sync, logs_dir, "run-reconcile-2", DAY)
    assert again.found.events == [] and again.sent is None
    assert sent_source_ids(segment_standin) == [1, 2, 3, 5, 10]


def test_reconciliation_leaves_the_watermark_where_it_was(passed_gap):
    sync, logs_dir = passed_gap
    reconcile_events(sync, logs_dir, "run-reconcile", DAY)
    assert factory.outbound_state(sync.settings, WRITE_KEY).watermark(Stream.EVENTS) == 10


def test_the_sensor_never_sees_an_event_committed_behind_its_cursor(passed_gap):
    sync, _ = passed_gap
    defs = build_definitions(os.environ["SEGMENT_SYNC_SETTINGS"])
    sensor = defs.resolve_sensor_def("outbound_events_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor="10", definitions=defs, resources=defs.resources
        )
        behind = sensor(context)
        assert isinstance(behind, dg.SkipReason) and context.cursor == "10"
        sync.store.append_events([NewEvent("c-new", "point_add", {"points": 1})])
        ahead = sensor(context)
    # Only the row above the cursor wakes it; the late id 5 is reconciliation's to find.
    assert isinstance(ahead, dg.RunRequest) and context.cursor == "11"


def test_events_above_the_watermark_are_left_to_the_regular_sync(passed_gap, segment_standin):
    sync, logs_dir = passed_gap
    sync.store.append_events([NewEvent("c-new", "point_add", {"points": 1})])
    done = reconcile_events(sync, logs_dir, "run-reconcile", DAY)
    assert [e.id for e in done.found.events] == [5]
    assert 11 not in sent_source_ids(segment_standin)


@pytest.mark.parametrize(
    ("columns", "why"),
    [
        ({"action": "opt_in"}, "action not in outbound.event_sync"),
        ({"origin": ORIGIN_SEGMENT}, "came in from Segment"),
        ({"data": orjson.dumps({"blob": "x" * 40_000}).decode()}, "over Segment's 32 KB limit"),
    ],
)
def test_events_the_settings_would_not_send_are_not_reconciled(passed_gap, columns, why):
    sync, logs_dir = passed_gap
    insert_event(sync.store, 6, **columns)
    found = find_undelivered(
        sync.settings,
        sync.store,
        logs_dir,
        watermark=10,
        since=datetime.now(UTC) - DAY,
        until=datetime.now(UTC),
    )
    assert [e.id for e in found.events] == [5], why


def test_an_event_without_the_mapped_customer_id_is_not_reconciled(write_settings, segment_standin):
    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        outbound={"base_url": segment_standin.url},
    )
    sync, logs_dir = synced(path)
    insert_event(sync.store, 1, external_customer_id=None)
    insert_event(sync.store, 2, external_customer_id="ext-2")
    found = find_undelivered(
        sync.settings,
        sync.store,
        logs_dir,
        watermark=2,
        since=datetime.now(UTC) - DAY,
        until=datetime.now(UTC),
    )
    assert [e.id for e in found.events] == [2]


def test_events_older_than_the_lookback_window_are_not_reconciled(passed_gap):
    sync, logs_dir = passed_gap
    insert_event(sync.store, 7, occurred_at=datetime.now(UTC) - timedelta(hours=30))
    done = reconcile_events(sync, logs_dir, "run-reconcile", DAY)
    assert [e.id for e in done.found.events] == [5]


def test_a_failed_reconciliation_leaves_the_event_for_the_next_one(passed_gap, segment_standin):
    sync, logs_dir = passed_gap
    segment_standin.set_faults(outage_requests=10_000)
    sync.settings = sync.settings.model_copy(
        update={"outbound": sync.settings.outbound.model_copy(update={"max_retries": 1})}
    )
    with pytest.raises(OutboundFailed, match="HTTP 503"):
        reconcile_events(sync, logs_dir, "run-reconcile-outage", DAY)
    segment_standin.set_faults(outage_requests=0)
    done = reconcile_events(sync, logs_dir, "run-reconcile-after", DAY)
    assert [e.id for e in done.found.events] == [5] and done.sent.counts.sent == 1
    assert sent_source_ids(segment_standin) == [1, 2, 3, 5, 10]


def test_many_slices_find_the_same_events_as_one(passed_gap):
    sync, logs_dir = passed_gap
    for id_, hours in ((6, 2.5), (7, 20)):
        insert_event(sync.store, id_, occurred_at=datetime.now(UTC) - timedelta(hours=hours))
    now = datetime.now(UTC)
    kwargs = {"watermark": 10, "since": now - DAY, "until": now}
    fine = find_undelivered(
        sync.settings, sync.store, logs_dir, slice_=timedelta(minutes=7), **kwargs
    )
    whole = find_undelivered(sync.settings, sync.store, logs_dir, slice_=DAY, **kwargs)
    assert [e.id for e in fine.events] == [e.id for e in whole.events] == [5, 6, 7]
    assert fine.scanned == whole.scanned == 7


def insert_profile_change(store: LoyaltyStore, id_: int, **attributes) -> None:
    """Commit a profile change with an explicit id, as an out-of-order commit leaves it."""
    row = {
        "id": id_,
        "customer_id": "c-late",
        "attributes": orjson.dumps(attributes).decode(),
        "occurred_at": datetime.now(UTC) - timedelta(minutes=5),
    }
    with store.engine.begin() as conn:
        conn.execute(profile_changes.insert().values(**row))


def test_a_profile_change_committed_behind_the_watermark_is_sent_by_reconciliation(
    write_settings, segment_standin
):
    sync, logs_dir = synced(write_settings(outbound={"base_url": segment_standin.url}))
    sync.store.append_profile_changes(
        [NewProfileChange(f"c-{i}", {"email": f"{i}@example.com"}) for i in range(3)]
    )
    insert_profile_change(sync.store, 10, email="ten@example.com")
    assert sync.run(Stream.PROFILES, "run-regular").watermark_after == 10
    insert_profile_change(sync.store, 5, email="late@example.com")
    insert_profile_change(sync.store, 6, tier="gold")  # no allow-listed field: never sent
    done = reconcile_events(sync, logs_dir, "run-reconcile", DAY, stream=Stream.PROFILES)
    assert [c.id for c in done.found.events] == [5] and done.sent.counts.sent == 1
    assert sent_source_ids(segment_standin) == [1, 2, 3, 5, 10]
    (late,) = [m for m in segment_standin.messages if m["messageId"].startswith("ss-prf-5-")]
    assert late["type"] == "identify" and late["traits"] == {"email": "late@example.com"}
    again = reconcile_events(sync, logs_dir, "run-reconcile-2", DAY, stream=Stream.PROFILES)
    assert again.found.events == [] and again.sent is None
