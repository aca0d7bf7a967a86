"""A real `dagster dev` (webserver and daemon on loopback) for tests, and its GraphQL API."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.standins.server import free_port
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WRITE_KEY

REPO = Path(__file__).resolve().parents[1]
LOCATION = "segment_sync"  # workspace.yaml's location_name
STARTUP_TIMEOUT_S = 60
RUN_TIMEOUT_S = 150

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on PythonError { message }
  }
}"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def dagster_home(tmp_path: Path, shipped: str = "dagster.yaml") -> Path:
    """A DAGSTER_HOME holding the repo's dagster.yaml (or `shipped`, a path in the repo), its
    relative storage paths moved under tmp_path."""
    config = yaml.safe_load((REPO / shipped).read_text())

    def relocate(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: str(tmp_path / value)
                if key == "base_dir" and isinstance(value, str) and not os.path.isabs(value)
                else relocate(value)
                for key, value in node.items()
            }
        return [relocate(v) for v in node] if isinstance(node, list) else node

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(relocate(config)))
    return home


class GraphQL:
    def __init__(self, url: str) -> None:
        self.url = f"{url}/graphql"
        self.process: subprocess.Popen | None = None

    def __call__(self, query: str, **variables: Any) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self, **filter_: Any) -> list[dict]:
        result = self(RUNS, filter=filter_)["runsOrError"]
        assert result["__typename"] == "Runs", result
        return result["results"]


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float, log: Path) -> Any:
    """Poll `condition` until it returns something truthy; fail with dagster's output if not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout_s}s; dagster dev output:\n{log.read_text()[-6000:]}")


def finished(graphql: GraphQL, **filter_: Any) -> dict | None:
    """The first run matching the filter once it has finished (any terminal status)."""
    for run in graphql.runs(**filter_):
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
    return None


@contextlib.contextmanager
def running_dagster_dev(
    tmp_path: Path, segment_standin, **outbound: Any
) -> Iterator[tuple[GraphQL, Path]]:
    """`dagster dev` on a free loopback port with a temp instance, settings and loyalty store;
    `outbound` overrides outbound settings. `graphql.process` is the `dagster dev` process,
    leader of its own process group (as a terminal's foreground job is)."""
    settings = tmp_path / "segment_sync.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "loyalty_store": {"url": f"sqlite:///{tmp_path}/loyalty.db"},
                "outbound": {
                    "base_url": segment_standin.url,
                    "event_sync": ["point_add", "purchase"],
                    "customer_fields_sync": ["email"],
                    "state_url": f"sqlite:///{tmp_path}/state.db",
                    "follow_s": 3,  # sensor runs follow the stream, briefly
                    "poll_interval_ms": 200,
                }
                | outbound,
                "inbound": {"buffer_url": f"sqlite:///{tmp_path}/inbound.db"},
                "logs": {"dir": str(tmp_path / "logs")},
            }
        )
    )
    LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db").append_events(
        [NewEvent(f"c-{i}", "point_add", {"points": i}) for i in range(1, 6)]
        + [NewEvent("c-9", "opt_in", {})]
    )
    shutil.copy(REPO / "workspace.yaml", tmp_path / "workspace.yaml")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home(tmp_path)),
        "SEGMENT_SYNC_SETTINGS": str(settings),
        "SEGMENT_WRITE_KEY": WRITE_KEY,
        "ANTAVO_API_KEY": ANTAVO_KEY,
        "ANTAVO_API_SECRET": ANTAVO_SECRET,
    }
    log = tmp_path / "dagster_dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(tmp_path / "workspace.yaml")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            "webserver up",
            lambda: httpx.get(f"{url}/server_info", timeout=2).status_code == 200,
            STARTUP_TIMEOUT_S,
            log,
        )
        graphql = GraphQL(url)
        graphql.process = process
        yield graphql, log
    finally:
        _stop(process)


def signal_group_and_wait(process: subprocess.Popen, signum: int, timeout_s: float) -> None:
    """Signal every process of `dagster dev`'s group (as Ctrl-C in its terminal does) and wait
    until all of them, run workers included, have exited."""
    os.killpg(process.pid, signum)
    process.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail(f"processes of dagster dev's group still running {timeout_s}s after the signal")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (webserver, daemon, code server, run workers), then KILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any
    process.wait(timeout=10)


def launch(graphql: GraphQL, job: str, run_config: dict | None = None, **tags: str) -> str:
    """Launch a job as the UI's launchpad does; its run id."""
    launched = graphql(
        LAUNCH,
        params={
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": job,
            },
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]
