"""A real `dagster dev` (webserver and daemon on loopback): a sensor tick launches a run, and
Dagster's GraphQL API shows the run, its metadata and the asset check results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync_tests.dagster_dev_harness import (
    LOCATION,
    RUN_TIMEOUT_S,
    GraphQL,
    finished,
    launch,
    running_dagster_dev,
    wait_for,
)

pytestmark = pytest.mark.slow

RUN_EVENTS = """
query RunEvents($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      eventConnection {
        events {
          __typename
          ... on ObservationEvent { assetKey { path } }
          ... on MaterializationEvent {
            assetKey { path }
            metadataEntries {
              label
              ... on IntMetadataEntry { intValue }
              ... on FloatMetadataEntry { floatValue }
            }
          }
        }
      }
    }
  }
}"""

CHECK_EXECUTIONS = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 10) {
    runId
    status
    evaluation {
      success
      severity
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
  }
}"""

# What the UI's check badge reads: null here is "Not evaluated".
LATEST_CHECK = """
query LatestCheck($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks { checks { name executionForLatestMaterialization { runId status } } }
      }
    }
  }
}"""

INSTIGATORS = """
query Instigators($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    ... on Sensors { results { name sensorState { status } } }
  }
  schedulesOrError(repositorySelector: $repo) {
    ... on Schedules { results { name scheduleState { status } } }
  }
}"""

CHECKS = {
    "outbound_error_rate": "outbound_log",
    "inbound_failed_items": "inbound_log",
    "oldest_undelivered_event": "outbound_log",
    "loyalty_source_alive": "loyalty_events",
}


@pytest.fixture
def dagster_dev(tmp_path, segment_standin) -> Iterator[tuple[GraphQL, Path]]:
    with running_dagster_dev(tmp_path, segment_standin) as running:
        yield running


def test_a_sensor_tick_launches_a_run_that_graphql_shows_with_metadata_and_check_results(
    dagster_dev, segment_standin, tmp_path
):
    graphql, log = dagster_dev
    started = time.monotonic()

    # The outbound events sensor (RUNNING by default) ticks; the daemon launches the queued run.
    sensor_tag = {"key": "dagster/sensor_name", "value": "outbound_events_sensor"}
    run = wait_for(
        "a sensor run finished", lambda: finished(graphql, tags=[sensor_tag]), RUN_TIMEOUT_S, log
    )
    assert run["status"] == "SUCCESS", log.read_text()[-6000:]
    assert run["jobName"] == "outbound_sync_job"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/run_key"] == "events-upto-6" and tags["segment_sync/trigger"] == "sensor"
    assert len(segment_standin.messages) == 5  # opt_in is not allow-listed

    # The run's materialization of the events stream's asset carries its numbers; the log
    # tables it wrote are observed, never materialized (so their checks stay evaluated).
    events = graphql(RUN_EVENTS, runId=run["runId"])["runOrError"]
    assert events["status"] == "SUCCESS"
    by_type = [(e["__typename"], e.get("assetKey")) for e in events["eventConnection"]["events"]]
    materializations = [
        e for e in events["eventConnection"]["events"] if e["__typename"] == "MaterializationEvent"
    ]
    assert [m["assetKey"]["path"] for m in materializations] == [["segment_track_calls"]]
    assert [key["path"] for kind, key in by_type if kind == "ObservationEvent"] == [
        ["outbound_log"], ["outbound_messages"], ["sync_runs"]
    ]  # fmt: skip
    materialization = materializations[0]
    metadata = {
        m["label"]: m.get("intValue", m.get("floatValue"))
        for m in materialization["metadataEntries"]
    }
    assert metadata["messages_sent"] == 5 and metadata["messages_failed"] == 0
    assert metadata["error_rate"] == 0.0 and metadata["p95_response_time_s"] > 0

    # Execute the asset checks as the UI's "Execute" does: launch their job through GraphQL.
    checks_run_id = launch(graphql, "log_checks_job")
    checks_run = wait_for(
        "the checks run finished",
        lambda: finished(graphql, runIds=[checks_run_id]),
        RUN_TIMEOUT_S - (time.monotonic() - started),
        log,
    )
    assert checks_run["status"] == "SUCCESS", log.read_text()[-6000:]
    for check, asset in CHECKS.items():
        # The 15-minute checks schedule may also have run them meanwhile: pick our run's execution.
        executions = graphql(CHECK_EXECUTIONS, assetKey={"path": [asset]}, checkName=check)[
            "assetCheckExecutions"
        ]
        [execution] = [e for e in executions if e["runId"] == checks_run_id]
        assert execution["status"] == "SUCCEEDED", (check, execution)
        assert execution["evaluation"]["success"] is True
        assert execution["evaluation"]["severity"] == "ERROR"

    # A delivery after the checks run leaves no check "Not evaluated" in the UI.
    LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db").append_events(
        [NewEvent("c-9", "point_add", {"points": 1})]
    )
    after_id = launch_outbound(graphql, "events")
    after = wait_for(
        "the outbound run after the checks finished",
        lambda: finished(graphql, runIds=[after_id]),
        RUN_TIMEOUT_S,
        log,
    )
    assert after["status"] == "SUCCESS", log.read_text()[-6000:]
    for check, asset in CHECKS.items():
        node = graphql(LATEST_CHECK, assetKey={"path": [asset]})["assetNodeOrError"]
        latest = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}[check]
        assert latest["executionForLatestMaterialization"] is not None, (check, "Not evaluated")

    # Every sensor and schedule of the code location runs by default in a real deployment.
    repo = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
    instigators = graphql(INSTIGATORS, repo=repo)
    sensors = {
        s["name"]: s["sensorState"]["status"] for s in instigators["sensorsOrError"]["results"]
    }
    schedules = {
        s["name"]: s["scheduleState"]["status"] for s in instigators["schedulesOrError"]["results"]
    }
    assert sensors == dict.fromkeys(
        ["inbound_buffer_sensor", "outbound_events_sensor", "outbound_profiles_sensor",
         "sync_run_failure_sensor", "run_failure_alert_sensor", "check_failure_alert_sensor"],
        "RUNNING",
    )  # fmt: skip
    assert schedules == dict.fromkeys(
        ["log_checks_schedule", "log_maintenance_schedule", "outbound_reconcile_schedule"],
        "RUNNING",
    )
    print(f"dagster dev: sensor run and checks done {time.monotonic() - started:.1f}s after start")


RUN_TIMES = """
query RunTimes($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}"""
STREAM_TAG = "segment_sync/stream"


def launch_outbound(graphql: GraphQL, stream: str) -> str:
    """outbound_sync_job for one stream, tagged with it as the sensors tag their runs."""
    config = {"ops": {"sync_outbound_stream": {"config": {"stream": stream.upper()}}}}
    return launch(graphql, "outbound_sync_job", config, **{STREAM_TAG: stream})


def overlapping(runs: list[dict]) -> list[tuple[str, str]]:
    """Pairs of runs whose [start, end] intervals intersect."""
    spans = sorted((r["startTime"], r["endTime"], r["runId"]) for r in runs)
    return [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1]]


def most_at_once(runs: list[dict]) -> int:
    """The largest number of runs whose [start, end] intervals share a moment."""
    edges = sorted([(r["startTime"], 1) for r in runs] + [(r["endTime"], -1) for r in runs])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def sending_spans(logs_dir: Path, stream: str) -> list[dict]:
    """Per run of the stream: from its first request to Segment to its last answer."""
    from segment_sync.logs.views import connect

    with connect(logs_dir) as con:
        rows = con.execute(
            "SELECT run_id, min(epoch(timestamp)), max(epoch(timestamp) + response_time_s) "
            "FROM outbound_log WHERE stream = ? GROUP BY run_id",
            [stream],
        ).fetchall()
    return [{"runId": r, "startTime": a, "endTime": b} for r, a, b in rows]


def test_the_daemon_runs_a_sender_and_at_most_its_successor_and_they_never_send_at_once(
    dagster_dev,
):
    graphql, log = dagster_dev
    launched = {stream: [launch_outbound(graphql, stream) for _ in range(3)] for stream in
                ("events", "profiles")}  # fmt: skip
    every_id = [run_id for ids in launched.values() for run_id in ids]

    def all_finished() -> list[dict] | None:
        runs = graphql(RUN_TIMES, filter={"runIds": every_id})["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return runs if len(done) == len(every_id) else None

    runs = wait_for("six queued runs finished", all_finished, RUN_TIMEOUT_S * 2, log)
    assert {r["status"] for r in runs} == {"SUCCESS"}, log.read_text()[-6000:]
    # Sensor-launched runs carry the same tag, so they count against the same limits.
    for stream in launched:
        tagged = graphql(RUN_TIMES, filter={"tags": [{"key": STREAM_TAG, "value": stream}]})[
            "runsOrError"
        ]["results"]
        ended = [r for r in tagged if r["endTime"] is not None]
        assert len(ended) >= 3
        # dagster.yaml: two per outbound stream, the sender and a successor waiting on the lock.
        assert most_at_once(ended) <= 2, f"more than two {stream} runs at once"
        spans = sending_spans(log.parent / "logs", stream)  # runs that had rows to send
        assert overlapping(spans) == [], f"two {stream} runs sent at once"
    assert sending_spans(log.parent / "logs", "events"), "the seeded events were never sent"
