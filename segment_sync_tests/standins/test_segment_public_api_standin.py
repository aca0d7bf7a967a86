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
