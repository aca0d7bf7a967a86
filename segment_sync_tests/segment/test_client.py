"""The Segment client against the Segment stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import gzip

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.http import RetryPolicy
from segment_sync.segment.client import SegmentClient, Verdict, gzip_body
from segment_sync.standins.segment import SegmentFaults, SegmentStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.odd_answers import answering, dripping

KEY = "us-key-123456"


def body(n: int = 2) -> bytes:
    msgs = [{"type": "track", "event": "e", "userId": "c", "messageId": f"m{i}"} for i in range(n)]
    return orjson.dumps({"batch": msgs})


@pytest.fixture
def standin():
    stand = SegmentStandin("us", {KEY: "us", "eu-key-123456": "eu"}, SegmentFaults(seed=1))
    with serve_in_thread(stand.app) as url:
        stand.url = url
        yield stand


def send(url: str, key: str, payload: bytes, max_retries: int = 6, **options) -> object:
    retry = RetryPolicy(max_retries, backoff_base_s=0.01, backoff_cap_s=0.05)

    async def go():
        async with SegmentClient(url, key, retry=retry, **options) as client:
            return await client.send(payload)

    return asyncio.run(go())


def test_batch_is_delivered_gzipped_with_basic_auth(standin):
    outcome = send(standin.url, KEY, body(3))
    assert outcome.verdict is Verdict.DELIVERED
    assert standin.accepted_message_ids() == ["m0", "m1", "m2"]
    assert standin.requests[-1]["gzip"] is True


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70_000) | st.text(max_size=20_000).map(str.encode))
def test_a_gzipped_body_is_one_gzip_member_the_stdlib_restores_exactly(raw):
    packed = gzip_body(raw)
    assert packed[:3] == b"\x1f\x8b\x08"  # a gzip header (RFC 1952), not zlib's
    assert gzip.decompress(packed) == raw  # an independent implementation reads it back


def test_throttling_is_retried_honouring_retry_after(standin):
    standin.set_faults(outage_requests=0, throttle_rate=1.0, retry_after_s=0.2)

    async def lift():
        await asyncio.sleep(0.3)
        standin.set_faults(throttle_rate=0.0)

    async def go():
        fast = RetryPolicy(backoff_base_s=0.001, backoff_cap_s=0.002)
        async with SegmentClient(standin.url, KEY, retry=fast) as client:
            _, outcome = await asyncio.gather(lift(), client.send(body()))
            return outcome

    outcome = asyncio.run(go())
    assert outcome.verdict is Verdict.DELIVERED
    assert outcome.attempts[0].status_code == 429
    assert outcome.attempts[0].retry_after_s == pytest.approx(0.2)
    assert len(outcome.attempts) <= 3  # waited Retry-After, not the 2 ms backoff


def test_server_errors_are_retried_until_delivered(standin):
    standin.set_faults(outage_requests=3)
    outcome = send(standin.url, KEY, body())
    assert outcome.verdict is Verdict.DELIVERED
    assert [a.status_code for a in outcome.attempts] == [503, 503, 503, 200]


def test_outage_longer_than_the_retry_budget_is_fatal(standin):
    standin.set_faults(outage_requests=100)
    outcome = send(standin.url, KEY, body(), max_retries=2)
    assert outcome.verdict is Verdict.FATAL
    assert len(outcome.attempts) == 3
    assert standin.accepted_message_ids() == []


def test_a_wrong_region_key_is_answered_200_so_the_client_cannot_tell(standin):
    """Segment's documented answer: 200, and the messages never reach the workspace. Only the
    Public API can prove a region wrong (`settings check --connect`)."""
    outcome = send(standin.url, "eu-key-123456", body())
    assert outcome.verdict is Verdict.DELIVERED and outcome.last.status_code == 200
    assert standin.accepted_message_ids() == []
    assert standin.dropped()["messages_by_reason"]["wrong_region"] == 2


def test_a_401_is_fatal_and_not_retried(strict_segment_standin):
    """strict_auth: a stand-in answering 401 (Segment documents no 401; if one comes, it is
    the key or the region, and a retry cannot heal it)."""
    outcome = send(strict_segment_standin.url, "eu-key-123456", body())
    assert outcome.verdict is Verdict.FATAL
    assert len(outcome.attempts) == 1
    assert outcome.last.status_code == 401
    assert "region" in outcome.last.error


def test_bad_request_is_rejected_and_not_retried(standin):
    outcome = send(standin.url, KEY, b"{not json")
    assert outcome.verdict is Verdict.REJECTED
    assert len(outcome.attempts) == 1 and outcome.last.status_code == 400


def test_network_error_is_retried_then_fatal():
    outcome = send("http://127.0.0.1:9", KEY, body(), max_retries=1)
    assert outcome.verdict is Verdict.FATAL
    assert [a.status_code for a in outcome.attempts] == [None, None]
    assert "ConnectError" in outcome.last.error
    # The error names where it tried and which settings to check.
    assert "http://127.0.0.1:9/v1/batch" in outcome.last.error
    assert "outbound.base_url" in outcome.last.error


def test_write_key_never_appears_in_attempt_records(standin):
    outcome = send(standin.url, "unknown-secret-key-999", body())
    assert "unknown-secret-key-999" not in repr(outcome)


NOT_SEGMENT = {
    "success_false": (b'{"success": false, "message": "messages dropped"}', "application/json"),
    "login_page": (b"<html><body>Please log in to the proxy</body></html>", "text/html"),
    "empty": (b"", "application/json"),
    "success_as_text": (b'{"success": "true"}', "application/json"),
    "json_array": (b"[true]", "application/json"),
}


@pytest.mark.parametrize("case", list(NOT_SEGMENT))
def test_a_2xx_that_is_not_segments_success_delivers_nothing_and_is_not_retried(case):
    """A captive portal or a proxy answering 200: never accepted, so FATAL (pending), not
    delivered; resending to the same answerer cannot help."""
    payload, content_type = NOT_SEGMENT[case]
    with answering(200, payload, content_type) as url:
        outcome = send(url, KEY, body())
    assert outcome.verdict is Verdict.FATAL
    assert [a.status_code for a in outcome.attempts] == [200]
    error = outcome.last.error or ""
    assert "answered 200 but not as Segment's Tracking API does" in error
    assert "check outbound.base_url" in error and f"{url}/v1/batch" in error
    assert repr(payload.decode()[:200]) in error if payload else "(body: empty)" in error


def test_segments_success_with_any_spacing_is_delivered():
    with answering(200, b'{ "success" : true }\n') as url:
        outcome = send(url, KEY, body())
    assert outcome.verdict is Verdict.DELIVERED and outcome.last.error is None


def test_a_secret_in_a_non_segment_answer_is_redacted():
    with answering(200, f"<p>welcome {KEY}</p>".encode(), "text/html") as url:
        outcome = send(url, KEY, body())
    assert outcome.verdict is Verdict.FATAL and KEY not in repr(outcome)


def test_a_dripped_answer_is_a_timeout_retried_then_fatal():
    """Each byte within timeout_s, the whole answer long after it: a timeout, as a network error."""
    with dripping(b'{"success": true}' + b" " * 23, every_s=0.15) as url:
        outcome = send(url, KEY, body(), max_retries=1, timeout_s=0.5)
    assert outcome.verdict is Verdict.FATAL
    assert [a.status_code for a in outcome.attempts] == [None, None]
    assert "Timeout: no whole answer within twice timeout_s" in (outcome.last.error or "")


def test_a_200_over_the_body_cap_delivers_nothing_and_names_the_size():
    with answering(200, b'{"success": true}' + b" " * (2 << 20)) as url:
        outcome = send(url, KEY, body())
    assert outcome.verdict is Verdict.FATAL and len(outcome.attempts) == 1
    error = outcome.last.error or ""
    assert "not as Segment's Tracking API does" in error
    assert "over the 1,048,576-byte limit (Content-Length 2,097,169)" in error
