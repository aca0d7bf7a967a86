"""A check's latest result stays attached to what it judged: syncs that run after the checks job
leave no check "Not evaluated" (Dagster's own rule, asked of a real instance)."""

from __future__ import annotations

import asyncio

import dagster as dg
from dagster._core.loader import LoadingContextForTest

from segment_sync.definitions import build_definitions
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings

ORDERS = {"name": "Orders", "action": "loyalty_event",
          "fields": {"action": {"@literal": "checkout"}}}  # fmt: skip


def unevaluated_checks(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[str]:
    """Checks whose latest execution does not count for their asset's latest materialization:
    what the UI shows as "Not evaluated" (GraphQL `executionForLatestMaterialization` is null)."""
    missing = []
    for key in defs.resolve_asset_graph().asset_check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        context = LoadingContextForTest(instance)
        if not history or not asyncio.run(history[0].targets_latest_materialization(context)):
            missing.append(key.to_user_string())
    return sorted(missing)


def _sync_both_ways(defs: dg.Definitions, instance: dg.DagsterInstance, path, n: int) -> None:
    """One outbound run that delivers an event, one inbound run that registers an event."""
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events([NewEvent("c-1", "point_add", {})])
    InboundBuffer(settings.inbound.buffer_url).add_many(
        [{"type": "track", "event": "Order", "messageId": f"m-{n}", "userId": "c-1"}]
    )
    for job in ("outbound_sync_job", "inbound_ingest_job"):
        assert defs.resolve_job_def(job).execute_in_process(instance=instance).success


def test_syncs_after_the_checks_job_leave_every_check_evaluated(
    write_settings, segment_standin, antavo_standin, tmp_path
):
    path = write_settings(
        outbound={"base_url": segment_standin.url},
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "max_retries": 0, "mappings": [ORDERS]},
    )  # fmt: skip
    antavo_standin.configure(known_customers={"c-1"})
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        _sync_both_ways(defs, instance, path, 1)
        assert defs.resolve_job_def("log_checks_job").execute_in_process(instance=instance).success
        assert unevaluated_checks(instance, defs) == []
        _sync_both_ways(defs, instance, path, 2)  # the syncs go on; the checks wait 15 min
        assert unevaluated_checks(instance, defs) == []
