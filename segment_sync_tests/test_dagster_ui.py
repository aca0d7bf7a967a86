"""What a data engineer sees in the Dagster UI, asserted through the GraphQL API the UI reads: the
lineage of both directions (outbound and inbound in groups of their own, Antavo's events leading
back into the loyalty store, one kind badge on the store), no community dialog, per-stream assets
with their plots' numbers, the log tables observed (never materialized) when written, the sensors
as the assets' automations, skip reasons on every skipped tick, run counts as tags, an expected
failure as a described `Failure`, and a run that sent nothing leaving the latest materialization
at the delivery."""

from __future__ import annotations

import pytest

from segment_sync.loyalty.records import NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync_tests.dagster_dev_harness import (
    LOCATION,
    RUN_TIMEOUT_S,
    finished,
    launch,
    running_dagster_dev,
    wait_for,
)

pytestmark = pytest.mark.slow

LOG_GROUP = "segment_sync_logs"
REPO = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}

ASSET_NODES = """
query Assets {
  assetNodes {
    assetKey { path }
    groupName
    kinds
    description
    dependencyKeys { path }
    targetingInstigators { ... on Sensor { name } ... on Schedule { name } }
  }
}"""

# Whether the UI opens with Dagster's "Join the Dagster community" dialog (nux).
SHOULD_SHOW_NUX = "query Nux { shouldShowNux }"

MATERIALIZATIONS = """
query Materializations($assetKey: AssetKeyInput!) {
  assetOrError(assetKey: $assetKey) {
    ... on Asset {
      assetMaterializations(limit: 20) {
        runId
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
      assetObservations(limit: 20) { runId }
    }
  }
}"""

TICKS = """
query Ticks($sensor: SensorSelector!) {
  sensorOrError(sensorSelector: $sensor) {
    ... on Sensor { sensorState { ticks(limit: 20) { status skipReason runIds } } }
  }
}"""

FAILURE_EVENTS = """
query Failure($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      tags { key value }
      eventConnection {
        events {
          __typename
          ... on ExecutionStepFailureEvent {
            error { className message errorChain { error { message } } }
            failureMetadata { description }
          }
        }
      }
    }
  }
}"""


def _path(key: dict) -> str:
    return "/".join(key["path"])


def _materialized_by(graphql, asset: str, run_id: str) -> list[dict[str, int]]:
    result = graphql(MATERIALIZATIONS, assetKey={"path": [asset]})["assetOrError"]
    return [
        {m["label"]: m.get("intValue") for m in entry["metadataEntries"]}
        for entry in result["assetMaterializations"]
        if entry["runId"] == run_id
    ]


def _observed_by(graphql, asset: str, run_id: str) -> list[dict]:
    result = graphql(MATERIALIZATIONS, assetKey={"path": [asset]})["assetOrError"]
    return [entry for entry in result["assetObservations"] if entry["runId"] == run_id]


def test_the_ui_shows_the_data_flow_its_automations_counts_and_reasons(tmp_path, segment_standin):
    with running_dagster_dev(tmp_path, segment_standin) as (graphql, log):
        sensor_tag = {"key": "dagster/sensor_name", "value": "outbound_events_sensor"}
        run = wait_for(
            "a sensor run finished",
            lambda: finished(graphql, tags=[sensor_tag]),
            RUN_TIMEOUT_S,
            log,
        )
        assert run["status"] == "SUCCESS", log.read_text()[-6000:]
        run_id = run["runId"]

        nodes = {_path(n["assetKey"]): n for n in graphql(ASSET_NODES)["assetNodes"]}
        # Lineage, both directions, and the groups.
        assert {_path(k) for k in nodes["segment_track_calls"]["dependencyKeys"]} == {
            "loyalty_events"
        }
        assert {_path(k) for k in nodes["segment_identify_calls"]["dependencyKeys"]} == {
            "loyalty_profile_changes"
        }
        assert {_path(k) for k in nodes["antavo_events"]["dependencyKeys"]} == {
            "segment_webhook_events"
        }
        assert {_path(k) for k in nodes["outbound_log"]["dependencyKeys"]} == {
            "segment_track_calls",
            "segment_identify_calls",
        }
        # Antavo's events lead back into the loyalty store: the loop and its echo suppression.
        for store_table in ("loyalty_events", "loyalty_profile_changes"):
            assert {_path(k) for k in nodes[store_table]["dependencyKeys"]} == {"antavo_events"}
            assert "echo suppression" in nodes[store_table]["description"]
        # Outbound and inbound are groups of their own, beside the store and the logs.
        groups = {name: n["groupName"] for name, n in nodes.items()}
        assert groups["sync_runs"] == groups["inbound_items"] == LOG_GROUP
        assert groups["segment_track_calls"] == groups["segment_identify_calls"] == "outbound"
        assert groups["segment_webhook_events"] == groups["antavo_events"] == "inbound"
        assert groups["loyalty_events"] == groups["loyalty_profile_changes"] == "loyalty_platform"
        assert set(groups.values()) == {"loyalty_platform", "outbound", "inbound", LOG_GROUP}
        # One kind badge on the store: the SQLite store these settings name.
        assert (
            nodes["loyalty_events"]["kinds"]
            == nodes["loyalty_profile_changes"]["kinds"]
            == ["sqlite"]
        )
        # No "Join the Dagster community" dialog on the first visit (dagster.yaml: nux off).
        assert graphql(SHOULD_SHOW_NUX)["shouldShowNux"] is False
        # The sensors are the stream assets' automations ("No automations found" before).
        assert {i["name"] for i in nodes["segment_track_calls"]["targetingInstigators"]} >= {
            "outbound_events_sensor"
        }
        assert {i["name"] for i in nodes["antavo_events"]["targetingInstigators"]} >= {
            "inbound_buffer_sensor"
        }

        # The events run materialized the track calls (its plot numbers) and no identify calls.
        [track] = _materialized_by(graphql, "segment_track_calls", run_id)
        assert track["messages_sent"] == 5 and track["delivered_upto"] == 6
        assert _materialized_by(graphql, "segment_identify_calls", run_id) == []
        for table in ("outbound_log", "outbound_messages", "sync_runs"):  # observed only
            assert _materialized_by(graphql, table, run_id) == [], table
            assert len(_observed_by(graphql, table, run_id)) == 1, table

        # The runs list shows the counts (tags).
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert (tags["segment_sync/sent"], tags["segment_sync/failed"]) == ("5", "0")

        # Every skipped tick says why (the profiles stream has nothing to send).
        ticks = graphql(TICKS, sensor={**REPO, "sensorName": "outbound_profiles_sensor"})[
            "sensorOrError"
        ]["sensorState"]["ticks"]
        skipped = [t for t in ticks if t["status"] == "SKIPPED"]
        assert skipped, ticks
        assert all(t["skipReason"] for t in skipped), skipped
        assert "no profiles newer than id 0" in skipped[0]["skipReason"]

        # An expected failure (Segment down) is a Failure that describes itself, no exception
        # chain; its run carries the failure kind and the counts.
        segment_standin.set_faults(outage_requests=10_000)
        config = {"ops": {"sync_outbound_stream": {"config": {"stream": "PROFILES"}}}}
        LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db").append_profile_changes(
            [NewProfileChange("c-1", {"email": "a@example.com"})]
        )
        failed_id = launch(graphql, "outbound_sync_job", config)
        failed = wait_for(
            "the failing run finished",
            lambda: finished(graphql, runIds=[failed_id]),
            RUN_TIMEOUT_S,
            log,
        )
        assert failed["status"] == "FAILURE"
        result = graphql(FAILURE_EVENTS, runId=failed_id)["runOrError"]
        [step_failure] = [
            e
            for e in result["eventConnection"]["events"]
            if e["__typename"] == "ExecutionStepFailureEvent"
        ]
        description = step_failure["failureMetadata"]["description"]
        assert "Segment" in description and step_failure["error"]["className"] == "Failure"
        assert step_failure["error"]["errorChain"] == []
        failed_tags = {t["key"]: t["value"] for t in result["tags"]}
        assert failed_tags["segment_sync/failure_kind"] == "transient"
        assert failed_tags["segment_sync/failed"] == "0"  # pending, not failed: it retries

        # A run that sends nothing (no new events) observes the asset and leaves the latest
        # materialization, the one the asset page leads with, at the run that delivered.
        events = {"ops": {"sync_outbound_stream": {"config": {"stream": "EVENTS"}}}}
        empty_id = launch(graphql, "outbound_sync_job", events)
        empty = wait_for(
            "the empty run finished",
            lambda: finished(graphql, runIds=[empty_id]),
            RUN_TIMEOUT_S,
            log,
        )
        assert empty["status"] == "SUCCESS"
        assert _materialized_by(graphql, "segment_track_calls", empty_id) == []
        assert len(_observed_by(graphql, "segment_track_calls", empty_id)) == 1
        latest = graphql(MATERIALIZATIONS, assetKey={"path": ["segment_track_calls"]})[
            "assetOrError"
        ]["assetMaterializations"][0]
        assert latest["runId"] == run_id
        sent = {m["label"]: m.get("intValue") for m in latest["metadataEntries"]}
        assert sent["messages_sent"] == 5
