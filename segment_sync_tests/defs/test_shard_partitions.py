"""outbound.shards in Dagster: a partition per shard, a sensor request per shard, a run per shard."""

from __future__ import annotations

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.defs.tags import STREAM_TAG
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.shards import shard_of
from segment_sync.settings import load_settings


def sharded_definitions(write_settings, segment_standin, shards: int = 3):
    path = write_settings(outbound={"base_url": segment_standin.url, "shards": shards})
    events = [NewEvent(f"c-{i % 40}", "point_add", {"n": i}) for i in range(120)]
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(events)
    return build_definitions(str(path))


def test_the_outbound_job_and_asset_are_partitioned_one_partition_per_shard(
    write_settings, segment_standin
):
    defs = sharded_definitions(write_settings, segment_standin)
    job = defs.resolve_job_def("outbound_sync_job")
    assert job.partitions_def.get_partition_keys() == ["shard-0", "shard-1", "shard-2"]
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("segment_track_calls")).partitions_def == job.partitions_def


def test_unsharded_settings_keep_the_job_unpartitioned(write_settings):
    job = build_definitions(str(write_settings())).resolve_job_def("outbound_sync_job")
    assert job.partitions_def is None


def test_the_sensor_requests_one_run_per_shard_each_with_its_partition(
    write_settings, segment_standin
):
    defs = sharded_definitions(write_settings, segment_standin)
    sensor = defs.resolve_sensor_def("outbound_events_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=defs.resources)
        requests = sensor(context)
    assert [r.partition_key for r in requests] == ["shard-0", "shard-1", "shard-2"]
    assert len({r.run_key for r in requests}) == 3
    assert context.cursor == "120"


def test_each_shards_runs_have_their_own_concurrency_lane(write_settings, segment_standin):
    """dagster.yaml allows 2 runs per stream tag value (a follow run and its successor): were
    the shards to share one value, a live follow run would hold the others' runs queued."""
    defs = sharded_definitions(write_settings, segment_standin)
    sensor = defs.resolve_sensor_def("outbound_events_sensor")
    with dg.instance_for_test() as instance:
        requests = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    lanes = [r.tags[STREAM_TAG] for r in requests]
    assert lanes == ["events/shard-0", "events/shard-1", "events/shard-2"]


def test_a_shards_run_materializes_its_partition_and_sends_only_its_customers(
    write_settings, segment_standin
):
    defs = sharded_definitions(write_settings, segment_standin)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            instance=instance, partition_key="shard-1"
        )
        assert result.success
        record = instance.get_latest_materialization_event(dg.AssetKey("segment_track_calls"))
    assert record.asset_materialization.partition == "shard-1"
    users = {m["userId"] for m in segment_standin.messages}
    assert users and {shard_of(u, 3) for u in users} == {1}


def test_a_sharded_run_without_a_partition_fails_naming_the_partitions(
    write_settings, segment_standin
):
    defs = sharded_definitions(write_settings, segment_standin)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "shard-0 to shard-2" in failure.step_failure_data.error.message
    assert segment_standin.messages == []
