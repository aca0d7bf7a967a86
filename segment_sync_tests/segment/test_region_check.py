"""The region check of one Segment destination, against real HTTP servers on loopback: the
Tracking API stand-in, the Public API stand-in, and small apps answering outside the contract."""

from __future__ import annotations

import asyncio
import string

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from segment_sync.check_results import Outcome
from segment_sync.redaction import SecretUrl
from segment_sync.segment.region_check import SegmentDestination, check_destination
from segment_sync.standins.segment import SegmentStandin
from segment_sync.standins.segment_public_api import SegmentPublicApiStandin, workspace_with
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.odd_answers import answering

US_KEY, EU_KEY, TOKEN = "key-of-the-us-source", "key-of-the-eu-source", "sgp_the_token_0001"
ENV = {"US_WRITE_KEY": US_KEY, "EU_WRITE_KEY": EU_KEY, "PAPI_TOKEN": TOKEN}


def destination(region: str, endpoint: str, key_env: str) -> SegmentDestination:
    return SegmentDestination(region, SecretUrl(endpoint), key_env, "PAPI_TOKEN")


def check(dest: SegmentDestination, template: str | None, environ=ENV):
    base = SecretUrl(template) if template else None
    return asyncio.run(check_destination(dest, environ=environ, public_api_base_url=base))


def test_each_destination_is_checked_on_its_own():
    """Item 3 will route to several destinations: one check per (region, key, token)."""
    segment = SegmentStandin("us", {US_KEY: "us", EU_KEY: "eu"})
    api = SegmentPublicApiStandin([workspace_with("us", TOKEN, [US_KEY])])
    with serve_in_thread(segment.app) as url, serve_in_thread(api.app) as api_url:
        template = f"{api_url}/{{region}}"
        good = check(destination("us", url, "US_WRITE_KEY"), template)
        other = check(destination("us", url, "EU_WRITE_KEY"), template)
    assert [r.outcome for r in good] == [Outcome.OK, Outcome.OK]
    assert other[1].outcome is Outcome.FAILED and "belongs to no source" in other[1].text


_FORBIDDEN = st.sampled_from([" ", '"', "'", ":", "\t", "é", "\x00", "\u2028"])


@settings(max_examples=60)
@given(
    head=st.text(string.ascii_letters + string.digits, min_size=8, max_size=20),
    bad=_FORBIDDEN,
    tail=st.text(string.ascii_letters + string.digits, max_size=20),
)
def test_a_value_that_cannot_be_a_write_key_fails_unshown_before_anything_is_sent(head, bad, tail):
    """The class: any value with a character an HTTP Basic user name cannot carry whole."""
    value = head + bad + tail
    dest = destination("us", "http://127.0.0.1:9", "US_WRITE_KEY")
    [result] = check(dest, None, {"US_WRITE_KEY": value})
    assert result.outcome is Outcome.FAILED and result.name == "Segment write key"
    assert "US_WRITE_KEY (outbound.write_key_env) cannot be a write key" in result.text
    assert value not in result.text


def _app(status: int, body: object) -> Starlette:
    async def answer(request):
        return JSONResponse(body, status)

    return Starlette(routes=[Route("/{region}/", answer), Route("/{region}/sources", answer)])


def _with_public_api(app: Starlette):
    segment = SegmentStandin("us", {US_KEY: "us"})
    with serve_in_thread(segment.app) as url, serve_in_thread(app) as api_url:
        return check(destination("us", url, "US_WRITE_KEY"), f"{api_url}/{{region}}")


def test_a_public_api_server_error_fails_without_guessing_the_region():
    results = _with_public_api(_app(503, {"errors": [{"type": "server", "message": "down"}]}))
    assert results[1].outcome is Outcome.FAILED
    assert results[1].text.startswith("cannot ask the Segment Public API: HTTP 503 at ")
    assert results[1].text.endswith(": down")


def test_an_answer_outside_the_contract_is_named_as_such():
    results = _with_public_api(_app(200, {"data": {"workspace": {"name": "W"}}}))
    assert results[1].outcome is Outcome.FAILED
    assert "not the Public API's shape" in results[1].text


def test_a_cursor_that_never_advances_ends_the_search():
    page = {"data": {"sources": [{"writeKeys": ["x"]}], "pagination": {"next": "same"}}}
    results = _with_public_api(_app(200, page))
    assert results[1].outcome is Outcome.FAILED and "never end" in results[1].text


def test_the_token_and_the_key_never_reach_the_results():
    segment = SegmentStandin("us", {US_KEY: "us"})
    api = SegmentPublicApiStandin([workspace_with("eu", TOKEN, [US_KEY])])
    with serve_in_thread(segment.app) as url, serve_in_thread(api.app) as api_url:
        results = check(destination("us", url, "US_WRITE_KEY"), f"{api_url}/{{region}}")
    assert results[1].outcome is Outcome.FAILED and "whose region is eu" in results[1].text
    text = repr(results)
    assert TOKEN not in text and US_KEY not in text


def test_an_endpoint_answering_200_not_as_segment_does_fails_the_check():
    """A captive portal or a proxy at outbound.base_url answers 200 but is not Segment."""
    with answering(200, b"<html>Sign in to the network</html>", "text/html") as url:
        dest = SegmentDestination("us", SecretUrl(url), "US_WRITE_KEY")
        endpoint, _ = check(dest, None)
    assert endpoint.outcome is Outcome.FAILED
    assert "answered 200 but not as Segment's Tracking API does" in endpoint.text
    assert "Sign in to the network" in endpoint.text and "outbound.base_url" in endpoint.text
