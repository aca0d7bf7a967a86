"""The Segment client against answers a proxy or a portal may give: compressed past the cap,
and credentials in the endpoint URL."""

from __future__ import annotations

import base64
import gzip

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.http import MAX_ANSWER_BYTES
from segment_sync.segment.client import Verdict
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.segment.test_client import KEY, body, send

INFLATED_BYTES = 8 * 2**20  # 8 MiB of spaces: about 8 KB on the wire


def _serve(answer) -> object:
    return serve_in_thread(Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])]))


def test_a_small_gzip_answer_that_inflates_past_the_cap_is_cut_at_the_cap_decoded():
    packed = gzip.compress(b'{"success": true}' + b" " * INFLATED_BYTES)
    assert len(packed) < MAX_ANSWER_BYTES  # the wire alone is under the cap

    async def answer(request: Request) -> Response:
        await request.body()
        headers = {"Content-Encoding": "gzip"}
        return Response(packed, 200, headers=headers, media_type="application/json")

    with _serve(answer) as url:
        outcome = send(url, KEY, body())
    assert MAX_ANSWER_BYTES == 1_048_576
    assert outcome.verdict is Verdict.FATAL and len(outcome.attempts) == 1
    assert "more than 1,048,576 bytes arrived" in (outcome.last.error or "")
    assert len(outcome.last.response_body or "") <= MAX_ANSWER_BYTES


@pytest.mark.parametrize("proxy_in_environment", [False, True])
def test_the_write_key_is_sent_never_the_endpoints_user_and_password(
    monkeypatch, proxy_in_environment: bool
):
    seen: list[str] = []

    async def answer(request: Request) -> Response:
        await request.body()
        seen.append(base64.b64decode(request.headers["authorization"].split()[1]).decode())
        return Response(b'{"success": true}', 200, media_type="application/json")

    if proxy_in_environment:  # httpx's own transports (they route proxies), not the lean one
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with _serve(answer) as url:
        relay = url.replace("http://", "http://relay:relaypass@", 1)
        outcome = send(relay, KEY, body())
    assert outcome.verdict is Verdict.DELIVERED
    assert seen == [f"{KEY}:"]
