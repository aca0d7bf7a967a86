"""A materialization of a Segment or Antavo asset means a delivery: a run that sent nothing
records an observation, so the latest materialization is the latest delivery, and the numbers of
an asset's materializations add up to what the outbound log holds for their runs. Real runs on a
real instance against the stand-ins."""

from __future__ import annotations

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings

TRACK = dg.AssetKey("segment_track_calls")
EVENTS_CONFIG = {"ops": {"sync_outbound_stream": {"config": {"stream": "EVENTS"}}}}
ORDERS = {"name": "Orders", "action": "loyalty_event",
          "fields": {"action": {"@literal": "checkout"}}}  # fmt: skip


def _events(path, n: int, offset: int = 0) -> None:
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent(f"c-{i % 40}", "point_add", {"points": i}) for i in range(offset, offset + n)]
    )


def _run(job, instance, **kwargs) -> str:
    result = job.execute_in_process(instance=instance, run_config=EVENTS_CONFIG, **kwargs)
    assert result.success
    return result.run_id


def _metadata(event) -> dict[str, object]:
    return {k: v.value for k, v in event.metadata.items()}


def _materializations(instance, key: dg.AssetKey) -> list[dg.EventLogRecord]:
    return list(instance.fetch_materializations(key, limit=100).records)


def _logged(logs_dir, run_ids: list[str]) -> tuple[int, int, int]:
    """Delivered messages, requests and request bytes the outbound log holds for `run_ids`."""
    with connect(logs_dir) as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM outbound_messages WHERE run_id IN (SELECT unnest($1)) "
            "        AND outcome = 'delivered'), "
            "       (SELECT count(*) FROM outbound_log WHERE run_id IN (SELECT unnest($1))), "
            "       (SELECT coalesce(sum(request_bytes), 0) FROM outbound_log "
            "        WHERE run_id IN (SELECT unnest($1)))",
            [run_ids],
        ).fetchone()


def test_a_run_that_sent_nothing_leaves_the_latest_materialization_at_the_last_delivery(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    _events(path, 3)
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        delivering = _run(job, instance)
        empty = _run(job, instance)  # nothing new: sends nothing

        latest = instance.get_latest_materialization_event(TRACK)
        [observation] = [
            r.event_log_entry.asset_observation
            for r in instance.fetch_observations(TRACK, limit=10).records
            if r.run_id == empty
        ]
    assert latest.run_id == delivering
    assert _metadata(latest.asset_materialization)["messages_sent"] == 3
    assert _metadata(observation)["messages_sent"] == 0  # the empty run's numbers, observed


def test_the_track_calls_materializations_add_up_to_the_outbound_log(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        for n in (250, 0, 70, 0):
            if n:
                _events(path, n, offset=1000 * n)
            _run(job, instance)
        records = _materializations(instance, TRACK)
    runs = [r.run_id for r in records]
    numbers = [_metadata(r.asset_materialization) for r in records]
    assert len(runs) == 2  # the two runs that delivered
    totals = tuple(sum(int(m[k]) for m in numbers) for k in ("messages_sent", "requests", "bytes"))
    assert totals == _logged(load_settings(path).logs.dir, runs)
    assert totals[0] == 320 and totals[1] > 1 and totals[2] > 0


def test_each_shards_materializations_add_up_to_its_runs_rows_in_the_outbound_log(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "shards": 3})
    _events(path, 60)
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        for shard in ("shard-0", "shard-1", "shard-2", "shard-1"):  # the second shard-1: empty
            _run(job, instance, partition_key=shard)
        records = _materializations(instance, TRACK)
    by_shard: dict[str, list] = {}
    for r in records:
        by_shard.setdefault(r.asset_materialization.partition, []).append(r)
    assert sorted(by_shard) == ["shard-0", "shard-1", "shard-2"]
    assert len(by_shard["shard-1"]) == 1  # its empty run is not a delivery
    logs_dir = load_settings(path).logs.dir
    for shard_records in by_shard.values():
        sent = sum(int(_metadata(r.asset_materialization)["messages_sent"]) for r in shard_records)
        assert sent > 0 and sent == _logged(logs_dir, [r.run_id for r in shard_records])[0]


def test_an_inbound_run_that_registered_nothing_records_no_antavo_events_materialization(
    write_settings, antavo_standin, tmp_path
):
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "mappings": [ORDERS]},
    )  # fmt: skip
    antavo_standin.configure(known_customers={"c-1"})
    buffer = InboundBuffer(load_settings(path).inbound.buffer_url)
    buffer.add_many([{"type": "track", "event": "Order", "messageId": "m-1", "userId": "c-1"}])
    job = build_definitions(str(path)).resolve_job_def("inbound_ingest_job")
    key = dg.AssetKey("antavo_events")
    with dg.instance_for_test() as instance:
        registering = job.execute_in_process(instance=instance).run_id
        empty = job.execute_in_process(instance=instance).run_id  # the buffer is drained
        latest = instance.get_latest_materialization_event(key)
        observed = [r.run_id for r in instance.fetch_observations(key, limit=10).records]
    assert latest.run_id == registering
    assert _metadata(latest.asset_materialization)["antavo_events"] == 1
    assert observed == [empty]
