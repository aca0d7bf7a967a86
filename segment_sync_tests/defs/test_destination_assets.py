"""Dagster with several destinations: an asset per destination and stream, sensors per
destination, and a run materializes only its destination's asset with its own counts."""

from __future__ import annotations

import dagster as dg
import pytest

from segment_sync.definitions import build_definitions
from segment_sync.defs.destinations import JOB_NAME, asset_key
from segment_sync.loyalty.records import Stream
from segment_sync_tests.outbound.regions import (
    EU_KEY,
    US_KEY,
    anna_in_eu_bob_in_us,
    routed_settings,
    two_regions,
)


@pytest.fixture
def routed(write_settings, monkeypatch):
    with two_regions(monkeypatch) as regions:
        path = routed_settings(write_settings, regions)
        anna_in_eu_bob_in_us(path, ("anna", "bob", "bob"))
        yield build_definitions(str(path)), regions


def _tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance):
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    return defs.resolve_sensor_def(name)(context)


def test_each_destination_has_its_own_assets_and_sensors(routed):
    defs, _ = routed
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"segment_track_calls_eu", "segment_identify_calls_eu", "segment_track_calls_us",
            "segment_identify_calls_us"} <= keys  # fmt: skip
    assert "segment_track_calls" not in keys  # no asset that is neither region
    for name in ("outbound_eu_events_sensor", "outbound_us_profiles_sensor"):
        assert defs.resolve_sensor_def(name).job_name == JOB_NAME


def test_a_sensor_run_delivers_one_destinations_customers_and_materializes_its_asset(routed):
    defs, regions = routed
    job = defs.resolve_job_def(JOB_NAME)
    with dg.instance_for_test() as instance:
        [request] = _tick(defs, "outbound_us_events_sensor", instance)
        run = job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags=request.tags,
            asset_selection=request.asset_selection,
        )
        assert run.success
        us = instance.get_latest_materialization_event(asset_key("us", Stream.EVENTS))
        eu = instance.get_latest_materialization_event(asset_key("eu", Stream.EVENTS))
        again = _tick(defs, "outbound_us_events_sensor", instance)
    assert {m["userId"] for m in regions.us.messages} == {"bob"} and len(regions.us.messages) == 2
    assert regions.eu.messages == []
    metadata = us.asset_materialization.metadata
    assert metadata["messages_sent"] == dg.MetadataValue.int(2)
    assert metadata["destination"] == dg.MetadataValue.text("us")
    assert eu is None  # the EU asset has no delivery it did not make
    assert isinstance(again, dg.SkipReason)
    assert US_KEY not in repr(run.all_events) and EU_KEY not in repr(run.all_events)
