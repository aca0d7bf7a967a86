"""Dagster with several destinations: an asset per destination and stream, sensors per
destination, and a run materializes only its destination's asset with its own counts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from segment_sync.definitions import build_definitions
from segment_sync.defs.destinations import JOB_NAME, asset_key
from segment_sync.loyalty.records import NewEvent, Stream
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
        request = _tick(defs, "outbound_us_events_sensor", instance)
        assert isinstance(request, dg.RunRequest), request
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


def _execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest):
    """The run a sensor asked for, with the job's own tags, as the daemon would launch it."""
    job = defs.resolve_job_def(JOB_NAME)
    return job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags={**job.tags, **request.tags},
        asset_selection=request.asset_selection,
        partition_key=request.partition_key,
        raise_on_error=False,
    )


def test_a_destination_sensor_run_follows_rows_that_commit_during_its_window(
    write_settings, monkeypatch
):
    with two_regions(monkeypatch) as regions:
        path = routed_settings(write_settings, regions, outbound={"follow_s": 8})
        store, _ = anna_in_eu_bob_in_us(path, ("bob",))
        defs = build_definitions(str(path))
        with dg.instance_for_test() as instance, ThreadPoolExecutor(1) as pool:
            request = _tick(defs, "outbound_us_events_sensor", instance)
            running = pool.submit(_execute, defs, instance, request)
            deadline = time.monotonic() + 60
            while not regions.us.messages and time.monotonic() < deadline:
                time.sleep(0.05)
            assert regions.us.messages, "the run's first pass sent nothing within 60 s"
            store.append_events([NewEvent("bob", "point_add", {"late": True})])
            run = running.result(timeout=120)
            us = instance.get_latest_materialization_event(asset_key("us", Stream.EVENTS))
    assert run.success
    assert [m["properties"].get("late") for m in regions.us.messages] == [None, True]
    assert us.asset_materialization.metadata["messages_sent"] == dg.MetadataValue.int(2)
    assert regions.eu.messages == []


def test_a_failed_destination_run_is_retried_by_its_sensor_under_a_new_run_key(
    write_settings, monkeypatch
):
    """A run key the daemon has seen starts nothing: the retry must carry a new one."""
    with two_regions(monkeypatch) as regions:
        path = routed_settings(
            write_settings, regions, outbound={"max_retries": 0, "retry_failed_after_s": 0}
        )
        anna_in_eu_bob_in_us(path, ("bob",))
        regions.us.set_faults(outage_requests=1000)
        defs = build_definitions(str(path))
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(
                instance=instance, definitions=defs, resources=defs.resources
            )
            sensor = defs.resolve_sensor_def("outbound_us_events_sensor")
            first = sensor(context)
            failed = _execute(defs, instance, first)
            again = sensor(
                dg.build_sensor_context(
                    instance=instance,
                    cursor=context.cursor,
                    definitions=defs,
                    resources=defs.resources,
                )
            )
    assert not failed.success
    assert isinstance(again, dg.RunRequest), again
    assert again.run_key != first.run_key and failed.run_id in again.run_key
    assert again.tags["segment_sync/destination"] == "us"
