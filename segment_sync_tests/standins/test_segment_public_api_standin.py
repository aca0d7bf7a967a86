"""The Segment Public API stand-in (workspace and sources, both regional hosts) over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from segment_sync.standins.segment_public_api import SegmentPublicApiStandin, workspace_with
from segment_sync.standins.server import serve_in_thread

TOKEN = "sgp_token_for_the_standin_tests"
KEY = "the-antavo-source-write-key"


@pytest.fixture
def api() -> Iterator[tuple[SegmentPublicApiStandin, httpx.Client]]:
    standin = SegmentPublicApiStandin([workspace_with("eu", TOKEN, [KEY], other_sources=5)])
    with serve_in_thread(standin.app) as url, httpx.Client(base_url=url) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield standin, client


def test_the_workspace_is_served_by_its_regions_host_only(api):
    standin, client = api
    served = client.get("/eu/")
    assert served.status_code == 200
    assert served.json() == {
        "data": {"workspace": {"id": "ws-loyalty", "name": "Loyalty", "slug": "loyalty"}}
    }
    refused = client.get("/us/")
    assert refused.status_code == 401 and refused.json()["errors"][0]["type"] == "unauthorized"


def test_an_unknown_token_is_401_in_the_public_apis_error_shape(api):
    _, client = api
    response = client.get(
        "/eu/sources", params={"pagination[count]": 10}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401 and set(response.json()) == {"errors"}


def test_sources_come_in_pages_until_next_is_left_out(api):
    _, client = api
    seen, cursor, pages = [], None, 0
    while True:
        params = {"pagination[count]": 2} | ({"pagination[cursor]": cursor} if cursor else {})
        data = client.get("/eu/sources", params=params).json()["data"]
        seen += [s["slug"] for s in data["sources"]]
        pages += 1
        assert data["pagination"]["totalEntries"] == 6
        cursor = data["pagination"].get("next")
        if cursor is None:
            break
    assert pages == 3 and seen[-1] == "antavo" and len(seen) == 6


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"pagination[count]": 0},
        {"pagination[count]": 201},
        {"pagination[count]": 5, "pagination[cursor]": "%%%"},
    ],
)
def test_pagination_outside_the_contract_is_a_422_validation_error(api, params):
    _, client = api
    response = client.get("/eu/sources", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "validation"


def test_a_token_without_source_admin_sees_empty_write_keys(api):
    standin, client = api
    standin.workspaces[0] = workspace_with("eu", TOKEN, [KEY], source_admin=False)
    sources = client.get("/eu/sources", params={"pagination[count]": 200}).json()["data"]["sources"]
    assert [s["writeKeys"] for s in sources] == [[]]


def test_records_never_hold_the_token(api):
    standin, client = api
    client.get("/eu/")
    client.get("/us/")
    assert [(r["region"], r["status"]) for r in standin.request_records()] == [
        ("eu", 200),
        ("us", 401),
    ]
    assert TOKEN not in repr(standin.request_records()) + repr(standin)


def test_runs_as_a_process_from_the_segment_sync_command(monkeypatch):
    """`segment-sync standin segment-public-api`: one workspace, secrets named by variable."""
    import os
    import subprocess
    import sys
    import time

    from segment_sync.standins.server import free_port

    port = free_port()
    env = dict(os.environ, PAPI_TOKEN=TOKEN, PAPI_KEY=KEY)
    command = [sys.executable, "-m", "segment_sync.cli", "standin", "segment-public-api"]
    command += ["--port", str(port), "--region", "eu", "--token-env", "PAPI_TOKEN"]
    command += ["--write-key-env", "PAPI_KEY", "--other-sources", "250"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the stand-in did not start"
                    time.sleep(0.05)
            assert client.get("/eu/").status_code == 200 and client.get("/us/").status_code == 401
            page = client.get("/eu/sources", params={"pagination[count]": 200}).json()["data"]
            assert page["pagination"]["totalEntries"] == 251 and "next" in page["pagination"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read().decode()
    assert "LOCAL STAND-IN" in stderr and TOKEN not in stderr and KEY not in stderr
