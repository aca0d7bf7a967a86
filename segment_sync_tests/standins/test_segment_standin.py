"""The Segment Tracking API stand-in, exercised over real loopback HTTP."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from segment_sync.standins.segment import (
    MAX_BATCH_MESSAGES,
    SegmentFaults,
    SegmentStandin,
    create_segment_app,
)
from segment_sync.standins.server import free_port, serve_in_thread

US_KEY = "wk_us_secret_0123456789"
EU_KEY = "wk_eu_secret_9876543210"
KEYS = {US_KEY: "us", EU_KEY: "eu"}


class _CurrentApp:
    """ASGI app forwarding to the current test's stand-in: one server for the whole module."""

    app: Starlette | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Forward to the current stand-in app."""
        await self.app(scope, receive, send)


_CURRENT = _CurrentApp()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """One loopback server for the module; each test swaps in its own stand-in."""
    with serve_in_thread(_CURRENT) as url:
        yield url


@pytest.fixture
def running(base_url: str) -> Callable:
    """Start a fresh stand-in behind the module server; returns (standin, httpx client)."""
    clients: list[httpx.Client] = []

    def start(
        faults: SegmentFaults | None = None,
        keep_messages: bool = True,
        region: str = "us",
        strict_auth: bool = False,
    ) -> tuple[SegmentStandin, httpx.Client]:
        standin = SegmentStandin(region, KEYS, faults, keep_messages, strict_auth=strict_auth)
        _CURRENT.app = standin.app
        clients.append(httpx.Client(base_url=base_url))
        return standin, clients[-1]

    yield start
    for client in clients:
        client.close()


def track(n: int) -> dict:
    """A valid track message."""
    return {"type": "track", "event": "Points Earned", "userId": f"c{n}", "messageId": f"m{n}"}


def batch(*messages: dict) -> dict:
    """A batch body."""
    return {"batch": list(messages)}


def post_batch(
    client: httpx.Client, body: object, key: str | None = US_KEY, **kw
) -> httpx.Response:
    """POST /v1/batch with the key as Basic-auth user."""
    auth = (key, "") if key is not None else None
    return client.post("/v1/batch", content=orjson.dumps(body), auth=auth, **kw)


def test_accepts_batch_and_keeps_messages(running: Callable) -> None:
    standin, client = running()
    response = post_batch(client, batch(track(1), track(2)))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert standin.messages == [track(1), track(2)]
    assert standin.accepted_message_ids() == ["m1", "m2"]
    assert standin.requests[0]["status"] == 200
    assert standin.requests[0]["accepted"] == 2


def test_accepts_write_key_in_body_without_auth_header(running: Callable) -> None:
    standin, client = running()
    response = post_batch(client, {"writeKey": US_KEY, **batch(track(1))}, key=None)
    assert response.status_code == 200
    assert standin.accepted_message_ids() == ["m1"]


def dropped(client: httpx.Client) -> dict:
    """The stand-in's own count of messages answered 200 but dropped."""
    return client.get("/_standin/dropped").json()


@pytest.mark.parametrize(
    ("key", "reason"),
    [(None, "missing_write_key"), ("nope", "unknown_write_key"), (EU_KEY, "wrong_region")],
)
def test_a_key_segment_would_not_take_is_answered_200_and_its_messages_dropped(
    running: Callable, key: str | None, reason: str
) -> None:
    """As Segment documents: 200 for everything but oversize and bad JSON; nothing arrives."""
    standin, client = running(region="us")
    response = post_batch(client, batch(track(1), track(2)), key=key)
    assert response.status_code == 200 and response.json() == {"success": True}
    assert standin.messages == [] and standin.accepted_message_ids() == []
    counts = dropped(client)
    assert counts["messages"] == 2 and counts["messages_by_reason"][reason] == 2
    assert counts["requests_by_reason"][reason] == 1
    assert standin.requests[0]["dropped_reason"] == reason


def test_a_key_of_the_other_region_is_recorded_with_its_region(running: Callable) -> None:
    standin, client = running(region="us")
    post_batch(client, batch(track(1)), key=EU_KEY)
    assert standin.requests[0]["write_key_region"] == "eu"
    assert dropped(client)["messages_by_reason"]["wrong_region"] == 1


def test_bearer_authorization_with_the_write_key_in_the_body_is_accepted(
    running: Callable,
) -> None:
    """Segment's OAuth form: a Bearer token in the header, the write key in the body."""
    standin, client = running()
    body = orjson.dumps({"writeKey": US_KEY, **batch(track(1))})
    response = client.post("/v1/batch", content=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == 200 and standin.accepted_message_ids() == ["m1"]


def test_a_bad_body_is_still_400_whatever_the_key(running: Callable) -> None:
    _, client = running()
    response = client.post("/v1/batch", content=b"{", auth=("nope", ""))
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


@settings(max_examples=40)
@given(key=st.text(min_size=1, max_size=60).filter(lambda k: k not in KEYS and ":" not in k))
def test_every_unknown_key_is_dropped_unseen(base_url: str, key: str) -> None:
    """The class: any key this endpoint does not know gets 200 and loses every message."""
    standin = SegmentStandin("us", KEYS)
    _CURRENT.app = standin.app
    with httpx.Client(base_url=base_url) as client:
        response = post_batch(client, {"writeKey": key, **batch(track(1))}, key=None)
        assert response.status_code == 200
        assert standin.accepted_message_ids() == [] and dropped(client)["messages"] == 1


@pytest.mark.parametrize("key", [None, "nope"])
def test_strict_auth_answers_401_to_a_missing_or_unknown_key(
    running: Callable, key: str | None
) -> None:
    """strict_auth: NOT Segment's documented behaviour, for tests of a client's 401 handling."""
    standin, client = running(strict_auth=True)
    response = post_batch(client, batch(track(1)), key=key)
    assert response.status_code == 401 and response.json()["success"] is False
    assert standin.messages == [] and dropped(client)["messages"] == 0


def test_strict_auth_refuses_non_basic_authorization_with_401(running: Callable) -> None:
    standin, client = running(strict_auth=True)
    headers = {"Authorization": "Bearer token"}
    response = client.post("/v1/batch", content=orjson.dumps(batch(track(1))), headers=headers)
    assert response.status_code == 401
    assert standin.messages == []


def test_strict_auth_refuses_a_key_from_the_other_region(running: Callable) -> None:
    standin, client = running(region="us", strict_auth=True)
    response = post_batch(client, batch(track(1)), key=EU_KEY)
    assert response.status_code == 401
    assert "another region" in response.json()["message"]
    assert standin.requests[0]["write_key_region"] == "eu"
    assert standin.messages == []


def test_eu_endpoint_accepts_eu_key(running: Callable) -> None:
    standin, client = running(region="eu")
    assert post_batch(client, batch(track(1)), key=EU_KEY).status_code == 200
    assert standin.requests[0]["write_key_region"] == "eu"


def test_gzip_body_accepted(running: Callable) -> None:
    standin, client = running()
    body = gzip.compress(orjson.dumps(batch(track(1))))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = client.post("/v1/batch", content=body, auth=(US_KEY, ""), headers=headers)
    assert response.status_code == 200
    assert standin.accepted_message_ids() == ["m1"]
    assert standin.requests[0]["gzip"] is True


def test_oversize_request_gets_400(running: Callable) -> None:
    padding = "x" * 1000
    messages = [dict(track(i), properties={"p": padding}) for i in range(520)]
    standin, client = running()
    response = post_batch(client, batch(*messages))
    assert response.status_code == 400
    assert standin.messages == []


def test_oversize_gzip_body_is_measured_after_decompression(running: Callable) -> None:
    messages = [dict(track(i), properties={"p": "x" * 1000}) for i in range(520)]
    body = gzip.compress(orjson.dumps(batch(*messages)))
    assert len(body) < 100 * 1024
    standin, client = running()
    headers = {"Content-Encoding": "gzip"}
    response = client.post("/v1/batch", content=body, auth=(US_KEY, ""), headers=headers)
    assert response.status_code == 400
    assert standin.messages == []


def test_bad_json_gets_400(running: Callable) -> None:
    standin, client = running()
    response = client.post("/v1/batch", content=b'{"batch": [', auth=(US_KEY, ""))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_batch_that_is_not_a_list_gets_400(running: Callable) -> None:
    _, client = running()
    assert post_batch(client, {"batch": {"type": "track"}}).status_code == 400
    assert post_batch(client, {"events": []}).status_code == 400


def test_message_over_32kb_rejects_whole_request_with_400(running: Callable) -> None:
    big = dict(track(2), properties={"p": "x" * (33 * 1024)})
    standin, client = running()
    response = post_batch(client, batch(track(1), big))
    assert response.status_code == 400
    assert response.json()["code"] == "message_too_large"
    assert standin.messages == []


def test_drops_messages_past_2500_but_answers_200(running: Callable) -> None:
    messages = [track(i) for i in range(MAX_BATCH_MESSAGES + 100)]
    standin, client = running()
    response = post_batch(client, batch(*messages))
    assert response.status_code == 200
    assert len(standin.messages) == MAX_BATCH_MESSAGES
    assert standin.accepted_message_ids()[-1] == f"m{MAX_BATCH_MESSAGES - 1}"
    assert standin.requests[0]["dropped_over_limit"] == 100


def test_invalid_messages_are_dropped_but_answer_is_200(running: Callable) -> None:
    no_user = {"type": "identify", "messageId": "a", "traits": {}}
    no_event = {"type": "track", "userId": "c", "messageId": "b"}
    no_id = {"type": "track", "userId": "c", "event": "E"}
    standin, client = running()
    response = post_batch(client, batch(no_user, track(1), no_event, no_id))
    assert response.status_code == 200
    assert standin.accepted_message_ids() == ["m1"]
    assert standin.requests[0]["drop_reasons"] == {
        "no_user_anon_id": 1,
        "track_without_event": 1,
        "no_message_id": 1,
    }


def test_single_track_and_identify_routes_accept_one_message(running: Callable) -> None:
    identify = {"userId": "c1", "messageId": "i1", "traits": {"tier": "gold"}}
    standin, client = running()
    assert client.post("/v1/track", json=track(1), auth=(US_KEY, "")).status_code == 200
    assert client.post("/v1/identify", json=identify, auth=(US_KEY, "")).status_code == 200
    assert [m["type"] for m in standin.messages] == ["track", "identify"]


def test_throttle_fault_sends_retry_after(running: Callable) -> None:
    standin, client = running(SegmentFaults(throttle_rate=1.0, retry_after_s=0.25))
    response = post_batch(client, batch(track(1)))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.25"
    assert standin.messages == []


def test_error_fault_answers_5xx_and_stores_nothing(running: Callable) -> None:
    standin, client = running(SegmentFaults(error_rate=1.0, seed=1))
    statuses = {post_batch(client, batch(track(i))).status_code for i in range(20)}
    assert statuses <= {500, 502, 503}
    assert standin.messages == []
    assert standin.stats()["messages_accepted"] == 0


def test_outage_requests_answer_503(running: Callable) -> None:
    standin, client = running(SegmentFaults(outage_requests=2))
    statuses = [post_batch(client, batch(track(i))).status_code for i in range(3)]
    assert statuses == [503, 503, 200]
    assert standin.accepted_message_ids() == ["m2"]


def test_outage_until_answers_503_until_that_time(running: Callable) -> None:
    until = time.time() + 0.5
    _, client = running(SegmentFaults(outage_until=until))
    assert post_batch(client, batch(track(1))).status_code == 503
    time.sleep(max(0.0, until - time.time()) + 0.02)
    assert post_batch(client, batch(track(1))).status_code == 200


def test_delay_fault_slows_the_answer(running: Callable) -> None:
    _, client = running(SegmentFaults(delay_s=0.2))
    started = time.monotonic()
    assert post_batch(client, batch(track(1))).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_seeded_faults_repeat_the_same_statuses(running: Callable) -> None:
    def statuses() -> list[int]:
        faults = SegmentFaults(error_rate=0.3, throttle_rate=0.3, seed=42)
        _, client = running(faults)
        return [post_batch(client, batch(track(i))).status_code for i in range(30)]

    first = statuses()
    assert first == statuses()
    assert {200, 429} <= set(first) and set(first) - {200, 429}


def test_write_key_never_in_response_or_records(
    running: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin, client = running()
    responses = [
        post_batch(client, batch(track(1))),
        post_batch(client, batch(track(2)), key=EU_KEY),
        post_batch(client, batch(track(3)), key=US_KEY + "x"),
        client.post("/v1/track", json=dict(track(4), writeKey=US_KEY)),
        client.post("/v1/batch", content=b"{", auth=(US_KEY, "")),
    ]
    paths = ("/_standin/messages", "/_standin/requests", "/_standin/dropped")
    inspected = [client.get(p).text for p in paths]
    inspected += [client.get("/_standin/stats").text, repr(standin)]
    texts = [r.text + str(r.headers) for r in responses] + inspected + [caplog.text]
    texts.append(repr(standin.messages) + repr(standin.requests))
    for text in texts:
        assert US_KEY not in text and EU_KEY not in text
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 400]


def test_keep_messages_false_keeps_only_ids_and_counts(running: Callable) -> None:
    standin, client = running(keep_messages=False)
    post_batch(client, batch(track(1), track(2)))
    assert standin.messages == []
    assert standin.accepted_message_ids() == ["m1", "m2"]
    assert client.get("/_standin/messages").json() == [{"messageId": "m1"}, {"messageId": "m2"}]
    assert standin.stats()["messages_accepted"] == 2


def test_duplicate_message_ids_are_counted(running: Callable) -> None:
    standin, client = running()
    post_batch(client, batch(track(1), track(2)))
    post_batch(client, batch(track(2)))
    assert standin.stats()["duplicate_message_ids"] == 1


def test_reset_clears_messages_requests_and_counts(running: Callable) -> None:
    standin, client = running()
    post_batch(client, batch(track(1)))
    assert client.post("/_standin/reset").status_code == 200
    assert standin.messages == [] and standin.requests == []
    assert standin.accepted_message_ids() == []
    assert client.get("/_standin/stats").json()["requests"] == 0


def test_stats_endpoint_counts_requests_by_status(running: Callable) -> None:
    _, client = running()
    post_batch(client, batch(track(1), {"type": "track"}))
    post_batch(client, batch(track(2)), key="nope")
    stats = client.get("/_standin/stats").json()
    assert stats["requests_by_status"] == {"200": 2}
    assert stats["messages_accepted"] == 1 and stats["messages_dropped"] == 2
    assert stats["messages_dropped_by_reason"] == {"no_user_anon_id": 1, "unknown_write_key": 1}
    assert stats["bytes_received"] > 0


def test_faults_endpoint_updates_faults_and_refuses_unknown_fields(running: Callable) -> None:
    standin, client = running()
    assert client.post("/_standin/faults", json={"outage_requests": 1}).status_code == 200
    assert standin.faults.outage_requests == 1
    assert post_batch(client, batch(track(1))).status_code == 503
    assert client.post("/_standin/faults", json={"nonsense": 1}).status_code == 400
    assert client.post("/_standin/faults", json={"error_rate": 2}).status_code == 400


def test_healthz_says_it_is_a_standin(running: Callable) -> None:
    _, client = running()
    body = client.get("/healthz").json()
    assert body["ok"] is True and body["production"] is False
    assert "STAND-IN" in body["label"]


def test_create_segment_app_exposes_its_standin() -> None:
    app = create_segment_app("eu", KEYS)
    assert app.state.standin.region == "eu"


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        SegmentStandin("ap", KEYS)


def test_official_analytics_python_library_delivers_to_standin(running: Callable) -> None:
    from segment.analytics.client import Client

    standin, client = running()
    official = Client(US_KEY, host=str(client.base_url), sync_mode=True, gzip=True)
    official.track(user_id="c1", event="Points Earned", properties={"points": 5})
    official.identify(user_id="c1", traits={"tier": "gold"})
    assert [m["type"] for m in standin.messages] == ["track", "identify"]
    assert standin.requests[0]["gzip"] is True


def test_runs_as_separate_process_from_command_line() -> None:
    port = free_port()
    command = [sys.executable, "-m", "segment_sync.standins.segment", "--port", str(port)]
    command += ["--region", "us", "--write-key", f"{US_KEY}=us", "--outage-requests", "1"]
    command += ["--refuse-marker", "refuse_me"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            _wait_healthy(client)
            assert post_batch(client, batch(track(1))).status_code == 503
            assert post_batch(client, batch(track(1))).status_code == 200
            marked = dict(track(2), properties={"refuse_me": True})
            assert post_batch(client, batch(track(3), marked)).status_code == 400
            assert client.get("/_standin/message_ids").json() == ["m1"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read().decode()
    assert "STAND-IN" in stderr and US_KEY not in stderr


def _wait_healthy(client: httpx.Client, timeout_s: float = 10.0) -> None:
    """Poll /healthz until the process answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def body_of_exactly(size: int) -> bytes:
    """A valid batch body of exactly `size` bytes of JSON (messages padded to fit)."""
    messages = [dict(track(i), properties={"p": ""}) for i in range(20)]
    short = len(orjson.dumps(batch(*messages)))
    per, extra = divmod(size - short, 20)
    for i, message in enumerate(messages):
        message["properties"]["p"] = "x" * (per + (1 if i < extra else 0))
    body = orjson.dumps(batch(*messages))
    assert len(body) == size
    return body


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_body_of_500000_bytes_is_accepted_and_one_of_500001_gets_400(
    running: Callable, gzipped: bool
) -> None:
    standin, client = running()
    headers = {"Content-Encoding": "gzip"} if gzipped else {}

    def post(size: int) -> httpx.Response:
        body = body_of_exactly(size)
        content = gzip.compress(body) if gzipped else body
        return client.post("/v1/batch", content=content, auth=(US_KEY, ""), headers=headers)

    assert post(500_000).status_code == 200
    refused = post(500_001)
    assert refused.status_code == 400
    assert refused.json()["code"] == "request_too_large" and "500000" in refused.json()["message"]
    assert len(standin.accepted_message_ids()) == 20  # the first body's only


def test_refuse_marker_fault_answers_400_for_every_request_carrying_a_marked_message(
    running: Callable,
) -> None:
    standin, client = running(SegmentFaults(refuse_marker="refuse_me"))
    marked = dict(track(2), properties={"refuse_me": True, "total": 3})
    refused = post_batch(client, batch(track(1), marked, track(3)))
    assert refused.status_code == 400 and refused.json()["code"] == "message_refused"
    assert post_batch(client, batch(marked)).status_code == 400  # every time it is sent
    traits = {"type": "identify", "userId": "c", "messageId": "i1", "traits": {"refuse_me": 1}}
    assert post_batch(client, batch(traits)).status_code == 400
    assert post_batch(client, batch(track(1), track(3))).status_code == 200
    assert standin.accepted_message_ids() == ["m1", "m3"]


def test_refuse_message_ids_fault_is_set_through_the_faults_api(running: Callable) -> None:
    standin, client = running()
    assert post_batch(client, batch(track(1), track(2))).status_code == 200
    set_ids = client.post("/_standin/faults", json={"refuse_message_ids": ["m2"]})
    assert set_ids.status_code == 200 and set_ids.json()["refuse_message_ids"] == ["m2"]
    assert post_batch(client, batch(track(1), track(2))).status_code == 400
    assert post_batch(client, batch(track(1))).status_code == 200
    assert client.post("/_standin/faults", json={"refuse_message_ids": "m2"}).status_code == 400
    assert client.post("/_standin/faults", json={"refuse_marker": 5}).status_code == 400
    assert standin.accepted_message_ids() == ["m1", "m2", "m1"]
