"""The HTTP layer both API clients share: retry rules, a deadline per request, a body cap."""

from __future__ import annotations

import asyncio
import gc
import weakref

import httpx
import pytest

from segment_sync.http import ApiClient, RetryPolicy, TimedPost, is_retryable, parse_retry_after
from segment_sync.lean_request import lean_headers
from segment_sync_tests.odd_answers import answering, dripping


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("99999") == 300.0  # never wait more than 5 minutes


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "-inf", "1e999"])
def test_a_retry_after_that_is_not_a_finite_number_is_ignored(value):
    assert parse_retry_after(value) is None  # a NaN pause jammed the shared pacer forever


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504])
def test_network_errors_timeouts_throttling_and_server_errors_are_retried(status):
    assert is_retryable(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 413, 422])
def test_success_and_client_errors_are_not_retried(status):
    assert not is_retryable(status)


def _run_policy(policy: RetryPolicy, answers: list[int | None], **kwargs) -> list[int]:
    """Attempt numbers the policy made against a server answering `answers` in turn."""
    made: list[int] = []

    async def attempt(number: int) -> int | None:
        made.append(number)
        return answers[number - 1]

    asyncio.run(policy.call(attempt, retryable=is_retryable, **kwargs))
    return made


def test_the_retry_policy_stops_after_max_retries_more_attempts() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base_s=0.0, backoff_cap_s=0.0)
    assert _run_policy(policy, [503] * 10, retry_after=lambda _: None) == [1, 2, 3, 4]


def test_the_retry_policy_stops_at_the_first_final_answer() -> None:
    policy = RetryPolicy(max_retries=5, backoff_base_s=0.0, backoff_cap_s=0.0)
    assert _run_policy(policy, [429, None, 200, 503], retry_after=lambda _: None) == [1, 2, 3]
    assert _run_policy(policy, [400, 503], retry_after=lambda _: None) == [1]


def test_the_retry_policy_hands_retry_after_to_the_caller_before_waiting() -> None:
    asked: list[float] = []
    policy = RetryPolicy(max_retries=2, backoff_base_s=0.0, backoff_cap_s=0.0)
    _run_policy(
        policy, [429, 429, 200], retry_after=lambda status: 0.0, on_retry_after=asked.append
    )
    assert asked == [0.0, 0.0]


def test_the_retry_policy_leaves_no_reference_cycle_holding_the_result() -> None:
    """The last result is freed as soon as the caller drops it, without the garbage collector
    (a cycle per request held each parsed answer until a collection)."""

    class Answer:
        status = 503

    freed: list[bool] = []

    async def main() -> None:
        async def attempt(number: int) -> Answer:
            return Answer()

        policy = RetryPolicy(max_retries=2, backoff_base_s=0.0, backoff_cap_s=0.0)
        answer = await policy.call(
            attempt, retryable=lambda a: is_retryable(a.status), retry_after=lambda _: None
        )
        weakref.finalize(answer, freed.append, True)
        del answer
        assert freed == [True]

    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()


def test_the_retry_policy_hands_the_last_attempts_retry_after_to_the_caller() -> None:
    """A Retry-After on the attempt that exhausts the retries still pauses the caller's other
    requests (the server asked everyone to wait), as tenacity's policy did: only the wait of
    this call is skipped. max_retries 0 (every attempt the last) must still pause."""
    for max_retries, answers, expected in ((0, [429], [7.0]), (1, [429, 429], [7.0, 7.0])):
        asked: list[float] = []
        policy = RetryPolicy(max_retries=max_retries, backoff_base_s=0.0, backoff_cap_s=0.0)
        made = _run_policy(
            policy,
            answers,
            retry_after=lambda status: 7.0 if status == 429 else None,
            on_retry_after=asked.append,
        )
        assert made == list(range(1, max_retries + 2))
        assert asked == expected


def _request(url: str, *, lean: bool, timeout_s: float = 5.0, cap: int = 1 << 20) -> TimedPost:
    async def go() -> TimedPost:
        client = ApiClient(
            secrets=[], timeout_s=timeout_s, max_connections=1, lean=lean, max_answer_bytes=cap
        )
        async with client:
            return await client.timed_post(f"{url}/x", b"{}", {}, fix="the URL is right")

    return asyncio.run(go())


@pytest.mark.parametrize("lean", [False, True], ids=["httpx", "lean"])
def test_an_answer_dripped_slower_than_timeout_s_in_all_is_a_timeout(lean):
    """Each byte comes well within timeout_s, the whole answer well after it: the deadline
    (twice timeout_s, so a hanging connect ends as a ConnectTimeout first) bounds the request,
    not each read."""
    with dripping(b'{"success": true}' + b" " * 23, every_s=0.15) as url:
        post = _request(url, lean=lean, timeout_s=0.5)
    assert post.response is None  # a network error to the callers: retried like a timeout
    assert post.error is not None and post.error.startswith("Timeout: no whole answer within")
    assert "twice timeout_s (1 s)" in post.error and "check that the URL is right" in post.error


@pytest.mark.parametrize("lean", [False, True], ids=["httpx", "lean"])
@pytest.mark.parametrize("framing", ["content_length", "chunked"])
def test_an_answer_over_the_body_cap_is_cut_short_and_says_its_size(lean, framing):
    big = b"x" * 300_000
    if framing == "content_length":
        server = answering(200, big, "text/html")
    else:
        server = dripping(big, every_s=0, chunk=16_384, length=False)
    with server as url:
        post = _request(url, lean=lean, cap=100_000)
    assert post.cut_short and post.response is not None and post.response.status_code == 200
    assert len(post.response.content) <= 100_000
    assert "its body is over the 100,000-byte limit" in (post.error or "")


@pytest.mark.parametrize("lean", [False, True], ids=["httpx", "lean"])
def test_an_answer_at_the_cap_is_read_whole(lean):
    with answering(200, b"y" * 100_000) as url:
        post = _request(url, lean=lean, cap=100_000)
    assert not post.cut_short and post.error is None
    assert post.response is not None and post.response.content == b"y" * 100_000


@pytest.mark.parametrize("lean", [True, False])
def test_a_url_httpx_cannot_parse_is_a_masked_error_not_an_exception(lean) -> None:
    """httpx's InvalidURL is no HTTPError, and quotes what it took for the port: a piece of a
    password holding a raw '/' (an alerts webhook URL from the environment is not checked at
    load)."""

    async def post() -> TimedPost:
        client = ApiClient(secrets=[], timeout_s=2, max_connections=1, lean=lean)
        try:
            return await client.timed_post(
                "https://u:PWhead/tail@hooks.example:8443/x", b"{}", {}, fix="the URL is right"
            )
        finally:
            await client.aclose()

    result = asyncio.run(post())
    assert result.response is None and result.error is not None
    assert "InvalidURL" in result.error and "PWhead" not in result.error, result.error


@pytest.mark.parametrize(
    "method, url, content, headers",
    [
        ("POST", "http://127.0.0.1:8080/events/bulk", b'{"a":1}', {"Content-Type": "a/json"}),
        ("post", "https://api.example/x?y=1", b"", {"host": "other", "USER-AGENT": "me"}),
        ("POST", "http://h:81/x", None, {"Accept": "a", "X-Id": "1"}),
        ("PUT", "http://h/x", b"12", {"Content-Length": "2", "Connection": "close"}),
        ("GET", "http://h/", None, {}),
        ("HEAD", "http://h/", b"x", {"Authorization": "ANTAVO-HMAC-SHA256 Credential=k"}),
    ],
)
def test_the_lean_path_sends_the_headers_httpx_would(method, url, content, headers) -> None:
    """The lean path builds a request's headers itself, as httpx's build_request does."""

    async def go() -> tuple[list, list]:
        async with ApiClient(
            secrets=[], timeout_s=1, max_connections=1, lean=True, headers={"X-Base": "b"}
        ) as client:
            parsed = httpx.URL(url)
            built = client._http.build_request(method, parsed, content=content, headers=headers)
            return lean_headers(
                client._http.headers.raw, method.upper(), parsed, content, headers
            ), [*built.headers.raw]

    ours, httpx_built = asyncio.run(go())
    assert ours == httpx_built
