"""/healthz over real HTTP: with a bearer token configured, the buffer's counts are for callers
holding it; anyone (a load balancer) still sees that the receiver is up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync_tests.inbound.receiver_harness import SECRET, TOKEN, event, serve_receiver


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    buf.add_many([event(1), event(2), event(3)])
    yield buf
    buf.close()


def _health(buffer: InboundBuffer, headers: dict[str, str], **options) -> httpx.Response:
    with serve_receiver(create_receiver_app(buffer, SECRET, **options)) as (host, port):
        return httpx.get(f"http://{host}:{port}/healthz", headers=headers, timeout=10)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no token", "wrong token", "not a bearer token"],
)
def test_with_a_token_an_unauthenticated_caller_sees_ok_and_no_counts(buffer, headers):
    response = _health(buffer, headers, webhook_token=TOKEN)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_with_a_token_the_caller_holding_it_sees_the_counts(buffer):
    response = _health(buffer, {"Authorization": f"Bearer {TOKEN}"}, webhook_token=TOKEN)
    assert response.status_code == 200 and response.json() == {"status": "ok", "pending": 3}


def test_without_a_token_configured_the_counts_stay_public(buffer):
    response = _health(buffer, {})
    assert response.json() == {"status": "ok", "pending": 3}
