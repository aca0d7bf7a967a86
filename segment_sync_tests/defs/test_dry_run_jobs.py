"""Dry runs from the launchpad: the jobs' `dry_run` config reports what would be sent, and sends,
claims, materializes and moves nothing."""

from __future__ import annotations

import dagster as dg

from segment_sync import factory
from segment_sync.definitions import build_definitions
from segment_sync.defs.tags import DRY_RUN_TAG
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY

ORDERS = {"name": "Orders", "action": "loyalty_event",
          "fields": {"action": {"@literal": "checkout"}}}  # fmt: skip


def _observation(result, asset: str) -> dict:
    [observation] = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and e.event_specific_data.asset_observation.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in observation.metadata.items()}


def _materialized(result) -> list[dg.AssetKey]:
    return [
        e.event_specific_data.materialization.asset_key
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    ]


def test_an_outbound_dry_run_reports_what_it_would_send_and_sends_and_moves_nothing(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i}", "point_add", {"points": i}) for i in range(3)]
        + [NewEvent("c-9", "opt_in", {})]
    )
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    dry = {"ops": {"sync_outbound_stream": {"config": {"dry_run": True}}}}
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(run_config=dry, instance=instance)
        tags = instance.get_run_by_id(result.run_id).tags
    assert result.success and tags[DRY_RUN_TAG] == "true"
    seen = _observation(result, "segment_track_calls")
    assert (seen["would_send_messages"], seen["would_send_requests"]) == (3, 1)
    assert "not allow-listed 1" in seen["summary"] and WRITE_KEY not in seen["summary"]
    assert segment_standin.messages == [] and _materialized(result) == []
    state = factory.outbound_state(settings, WRITE_KEY)
    try:
        assert state.watermark(Stream.EVENTS) == 0
    finally:
        state.close()


def test_an_inbound_dry_run_reports_the_events_and_claims_no_buffered_item(
    write_settings, antavo_standin, tmp_path
):
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "mappings": [ORDERS]},
    )  # fmt: skip
    buffer_url = load_settings(path).inbound.buffer_url
    InboundBuffer(buffer_url).add_many(
        [{"type": "track", "event": "Order", "messageId": f"m-{i}", "userId": "c-1"}
         for i in range(4)]
    )  # fmt: skip
    job = build_definitions(str(path)).resolve_job_def("inbound_ingest_job")
    dry = {"ops": {"ingest_inbound_buffer": {"config": {"dry_run": True}}}}
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(run_config=dry, instance=instance)
    assert result.success
    seen = _observation(result, "antavo_events")
    assert (seen["would_send_events"], seen["would_send_requests"]) == (4, 1)
    assert antavo_standin.stats()["requests"] == 0 and _materialized(result) == []
    assert InboundBuffer(buffer_url).pending_summary()[0] == 4  # still pending, none claimed
