"""A dry run of the destinations job (the launchpad's `dry_run: true`): what the chosen
destination would get, observed on its asset; nothing sent, no progress moved."""

from __future__ import annotations

import dagster as dg
import pytest

from segment_sync import factory
from segment_sync.definitions import build_definitions
from segment_sync.defs.destinations import JOB_NAME, OP_NAME, asset_key
from segment_sync.loyalty.records import Stream
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import (
    US_KEY,
    anna_in_eu_bob_in_us,
    routed_settings,
    two_regions,
)


@pytest.fixture
def routed(write_settings, monkeypatch):
    with two_regions(monkeypatch) as regions:
        path = routed_settings(write_settings, regions)
        anna_in_eu_bob_in_us(path, ("anna", "bob", "bob", "nobody"))
        yield path, regions


def test_a_dry_run_of_one_destination_observes_its_would_be_sends_and_sends_nothing(routed):
    path, regions = routed
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def(JOB_NAME).execute_in_process(
            run_config={"ops": {OP_NAME: {"config": {"dry_run": True}}}},
            instance=instance,
            asset_selection=[asset_key("us", Stream.EVENTS)],
        )
        assert run.success
        [observed] = [
            e.asset_observation_data.asset_observation
            for e in run.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        materialized = instance.get_latest_materialization_event(asset_key("us", Stream.EVENTS))
    assert observed.asset_key == asset_key("us", Stream.EVENTS)
    assert observed.metadata["would_send_messages"] == dg.MetadataValue.int(2)  # bob's two
    assert observed.metadata["would_fail"] == dg.MetadataValue.int(0)  # nobody is eu's to report
    assert "events@us (track)" in observed.metadata["summary"].value
    assert materialized is None
    assert regions.us.stats()["requests"] == regions.eu.stats()["requests"] == 0
    state = factory.outbound_state(load_settings(path).for_destination("us"), US_KEY)
    assert state.watermark(Stream.EVENTS) == 0
