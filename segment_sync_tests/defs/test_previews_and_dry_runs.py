"""Dry runs and mapping previews from the launchpad: the jobs' `dry_run` config and
`mappings_preview_job` report what would be sent, and send, claim, materialize and move nothing."""

from __future__ import annotations

import json

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


PURCHASES = {
    "name": "Purchases",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {"action": "purchase", "data": {"total": {"@path": "$.properties.total"}}},
}


def _preview(path, config: dict) -> dg.ExecuteInProcessResult:
    job = build_definitions(str(path)).resolve_job_def("mappings_preview_job")
    with dg.instance_for_test() as instance:
        return job.execute_in_process(
            run_config={"ops": {"preview_inbound_mappings": {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )


def test_the_preview_job_shows_the_request_for_an_event_given_in_its_config(
    write_settings, antavo_standin, tmp_path
):
    path = write_settings(inbound={"base_url": antavo_standin.url, "mappings": [PURCHASES]})
    event = {"type": "track", "event": "Order Completed", "messageId": "m-7", "userId": "c-1",
             "properties": {"total": 42}}  # fmt: skip
    result = _preview(path, {"event_json": json.dumps(event)})
    assert result.success
    [output] = [e for e in result.all_events if e.is_successful_output]
    preview = output.event_specific_data.metadata["preview"].value
    assert "POST /events" in preview and '"total": 42' in preview and "m-7" in preview
    assert antavo_standin.stats()["requests"] == 0


def test_the_preview_job_names_the_configured_mappings_when_asked_for_an_unknown_one(
    write_settings,
):
    path = write_settings(inbound={"mappings": [PURCHASES]})
    result = _preview(path, {"mapping": "Refunds"})
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert description == "no mapping named 'Refunds'; configured mappings: 'Purchases'"
