"""The Antavo Events API stand-in, exercised over real loopback HTTP with Escher-signed requests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from segment_sync.antavo.escher import sign_request
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.server import free_port, serve_in_thread

API_KEY = "ak_standin_0123456789"
API_SECRET = "secret-standin-abcdefghij"
STACK = "test"


@contextmanager
def running(**kwargs: Any) -> Iterator[tuple[AntavoStandin, httpx.Client]]:
    """A stand-in served on loopback and an httpx client pointed at it."""
    standin = AntavoStandin(API_KEY, API_SECRET, stack=STACK, **kwargs)
    with serve_in_thread(standin.app) as base_url, httpx.Client(base_url=base_url) as client:
        yield standin, client


def post_signed(
    client: httpx.Client,
    path: str,
    body: object,
    *,
    secret: str = API_SECRET,
    stack: str = STACK,
    now: datetime | None = None,
) -> httpx.Response:
    """POST a JSON body, Escher-signed the way the real client signs."""
    raw = orjson.dumps(body)
    url = f"{client.base_url}{path}"
    headers = sign_request(API_KEY, secret, stack, "POST", url, raw, now=now)
    headers["Content-Type"] = "application/json"
    return client.post(path, content=raw, headers=headers)


def event(customer: str = "c1", action: str = "point_add", **data: object) -> dict:
    """An Events API event."""
    return {"customer": customer, "action": action, "data": data or {"points": 10}}


def test_signed_event_is_registered_with_a_24_hex_id() -> None:
    with running() as (standin, client):
        response = post_signed(client, "/events", event())
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == "c1"
        [registered] = body["events"]
        assert re.fullmatch(r"[0-9a-f]{24}", registered["id"])
        assert registered["action"] == "point_add"
        assert standin.events == [{"id": registered["id"], **event()}]


def test_unsigned_request_gets_401_in_antavo_error_shape_without_secrets() -> None:
    with running() as (standin, client):
        response = client.post("/events", content=orjson.dumps(event()))
        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) == {"type", "code", "message"}
        assert error["type"] == "UnauthorizedException"
        assert API_KEY not in response.text and API_SECRET not in response.text
        assert standin.events == []


def test_wrong_secret_gets_401() -> None:
    with running() as (standin, client):
        response = post_signed(client, "/events", event(), secret="not-the-secret")
        assert response.status_code == 401
        assert "signature" in response.json()["error"]["message"].lower()
        assert "not-the-secret" not in response.text


def test_signature_for_another_stack_gets_401() -> None:
    with running() as (_, client):
        assert post_signed(client, "/events", event(), stack="st2").status_code == 401


def test_signature_older_than_clock_skew_gets_401() -> None:
    with running() as (_, client):
        stale = datetime.now(UTC) - timedelta(minutes=10)
        assert post_signed(client, "/events", event(), now=stale).status_code == 401


def test_missing_customer_or_action_gets_400() -> None:
    with running() as (standin, client):
        for body in ({"action": "point_add", "data": {}}, {"customer": "c1", "data": {}}):
            response = post_signed(client, "/events", body)
            assert response.status_code == 400
            assert response.json()["error"]["type"] == "BadRequestException"
            assert "Missing required parameter" in response.json()["error"]["message"]
        assert standin.events == []


def test_unknown_customer_gets_404_customer_not_found() -> None:
    with running(known_customers={"c1"}) as (standin, client):
        response = post_signed(client, "/events", event("ghost"))
        assert response.status_code == 404
        assert response.json() == {
            "error": {"type": "NotFoundException", "code": 160212, "message": "Customer not found"}
        }
        assert standin.events == []


def test_opt_in_registers_an_unknown_customer() -> None:
    with running(known_customers={"c1"}) as (standin, client):
        assert post_signed(client, "/events", event("new", "opt_in")).status_code == 200
        assert post_signed(client, "/events", event("new", "point_add")).status_code == 200
        assert [e["action"] for e in standin.events] == ["opt_in", "point_add"]


def test_bulk_answers_one_result_per_event_in_order() -> None:
    with running(known_customers={"c1", "c2"}) as (standin, client):
        events = [event("c1"), event("ghost"), {"customer": "c2"}, event("c2", "profile")]
        response = post_signed(client, "/events/bulk", {"events": events})
        assert response.status_code == 200
        body = response.json()
        assert (body["total"], body["errors"]) == (4, 2)
        ok1, missing, invalid, ok2 = body["results"]
        assert ok1["events"][0]["action"] == "point_add"
        assert missing["error"]["message"] == "Customer not found"
        assert invalid["error"]["type"] == "BadRequestException"
        assert ok2["events"][0]["action"] == "profile"
        assert [e["id"] for e in standin.events] == [ok1["events"][0]["id"], ok2["events"][0]["id"]]


def test_bulk_over_50_events_gets_400() -> None:
    with running() as (standin, client):
        response = post_signed(client, "/events/bulk", {"events": [event()] * 51})
        assert response.status_code == 400
        assert "at most 50" in response.json()["error"]["message"]
        assert standin.events == []


def test_rate_limit_answers_429_with_retry_after_once_the_window_is_full() -> None:
    with running(rate_limit_per_minute=2) as (standin, client):
        statuses = [post_signed(client, "/events", event()).status_code for _ in range(2)]
        throttled = post_signed(client, "/events", event())
        assert statuses == [200, 200]
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert throttled.json()["error"]["type"] == "TooManyRequestsException"
        assert standin.stats()["rate_limited"] == 1


def test_error_rate_answers_503() -> None:
    with running(error_rate=1.0, seed=7) as (standin, client):
        statuses = {post_signed(client, "/events", event()).status_code for _ in range(10)}
        assert statuses == {503}
        assert standin.events == []


def test_on_event_is_called_with_the_event_and_its_id() -> None:
    calls: list[tuple[dict, str]] = []
    with running(on_event=lambda e, i: calls.append((e, i))) as (standin, client):
        body = {**event("c9"), "account": "main_account", "external_id": "ext-9"}
        response = post_signed(client, "/events", body)
        event_id = response.json()["events"][0]["id"]
        assert calls == [(body, event_id)]
        assert standin.events == [{"id": event_id, **body}]


def test_config_endpoint_changes_behaviour_at_runtime() -> None:
    with running() as (standin, client):
        config = client.post("/_standin/config", json={"fail_next": [503], "error_rate": 0}).json()
        assert config["fail_next"] == [503]
        assert post_signed(client, "/events", event()).status_code == 503
        assert post_signed(client, "/events", event()).status_code == 200
        client.post("/_standin/config", json={"known_customers": ["c1"]})
        assert post_signed(client, "/events", event("c2")).status_code == 404
        bad = client.post("/_standin/config", json={"error_rate": 2})
        assert bad.status_code == 400


def test_stats_count_requests_by_status_and_events() -> None:
    with running() as (_, client):
        post_signed(client, "/events", event())
        post_signed(client, "/events/bulk", {"events": [event(), {"customer": "c1"}]})
        client.post("/events", content=b"{}")
        stats = client.get("/_standin/stats").json()
        assert stats["requests"] == 3
        assert stats["requests_by_status"] == {"200": 2, "401": 1}
        assert stats["requests_by_path"] == {"/events": 2, "/events/bulk": 1}
        assert (stats["events_registered"], stats["events_rejected"]) == (2, 1)


def test_reset_forgets_events_and_stats() -> None:
    with running() as (standin, client):
        post_signed(client, "/events", event())
        assert client.get("/_standin/events").json()["count"] == 1
        client.post("/_standin/reset")
        assert client.get("/_standin/events").json() == {"events": [], "count": 0}
        assert standin.stats()["requests"] == 0


def test_healthz_labels_the_stand_in() -> None:
    with running() as (_, client):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert "STAND-IN" in response.json()["standin"]
        assert response.headers["X-Standin"] == "antavo"


def test_command_line_reads_credentials_from_the_environment() -> None:
    port = free_port()
    env = {**os.environ, "MY_KEY": API_KEY, "MY_SECRET": API_SECRET}
    argv = [sys.executable, "-m", "segment_sync.standins.antavo", "--port", str(port)]
    argv += ["--api-key-env", "MY_KEY", "--api-secret-env", "MY_SECRET", "--stack", STACK]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 15
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.05)
            assert post_signed(client, "/events", event()).status_code == 200
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert "STAND-IN" in stderr
    assert API_SECRET not in stderr and API_KEY not in stderr


def test_command_line_refuses_to_start_without_the_secret_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTAVO_API_KEY", "ANTAVO_API_SECRET")}
    proc = subprocess.run(
        [sys.executable, "-m", "segment_sync.standins.antavo", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "ANTAVO_API_KEY is not set" in proc.stderr


def get_signed(client: httpx.Client, path: str, *, secret: str = API_SECRET) -> httpx.Response:
    """A GET, Escher-signed as `settings check --connect` signs its probe."""
    headers = sign_request(API_KEY, secret, STACK, "GET", f"{client.base_url}{path}", b"")
    return client.get(path, headers=headers)


def test_a_signed_get_of_an_unknown_customer_is_antavos_customer_not_found() -> None:
    with running() as (standin, client):
        response = get_signed(client, "/customers/nobody")
        assert response.status_code == 404
        assert response.json()["error"] == {
            "type": "NotFoundException",
            "code": 160212,
            "message": "Customer not found",
        }
        assert standin.events == []


def test_a_signed_get_of_a_known_customer_answers_it() -> None:
    with running(known_customers={"c1"}) as (_, client):
        response = get_signed(client, "/customers/c1")
        assert response.status_code == 200 and response.json()["id"] == "c1"


def test_a_get_with_a_wrong_secret_or_no_signature_is_401() -> None:
    with running() as (_, client):
        assert get_signed(client, "/customers/nobody", secret="wrong").status_code == 401
        assert client.get("/customers/nobody").status_code == 401
