"""How the receiver is served: `POST /segment` past Starlette's stack, and the collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.receiver_serving import GC_THRESHOLDS, ReceiverApp, tune_collector
from segment_sync.inbound.signature import sign
from segment_sync_tests.inbound.receiver_harness import SECRET, body, event, serve_receiver


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


class Broken(Exception):
    """What the failing endpoint below raises."""


async def _failing_segment(_scope, _receive) -> Response:
    raise Broken("a bug in the endpoint")


async def _declared(_request) -> Response:  # never reached: the fast path answers first
    return Response(status_code=204)


def test_a_failure_inside_the_fast_path_is_answered_500_not_left_hanging() -> None:
    app = ReceiverApp(_failing_segment, routes=[Route("/segment", _declared, methods=["POST"])])
    with serve_receiver(app) as (host, port):
        answer = httpx.post(f"http://{host}:{port}/segment", content=b"{}", timeout=10)
    assert answer.status_code == 500
    assert answer.text == "Internal Server Error"


def test_other_methods_on_segment_are_still_refused_405(buffer: InboundBuffer) -> None:
    app = create_receiver_app(buffer, SECRET)
    with serve_receiver(app) as (host, port):
        answer = httpx.get(f"http://{host}:{port}/segment", timeout=10)
    assert answer.status_code == 405
    assert buffer.max_id() == 0


def test_a_post_to_another_path_is_404_and_stores_nothing(buffer: InboundBuffer) -> None:
    app = create_receiver_app(buffer, SECRET)
    payload = body(event(1))
    with serve_receiver(app) as (host, port):
        answer = httpx.post(
            f"http://{host}:{port}/segment/extra",
            content=payload,
            headers={"X-Signature": sign(payload, SECRET), "Content-Type": "application/json"},
            timeout=10,
        )
    assert answer.status_code == 404
    assert buffer.max_id() == 0


def test_tune_collector_freezes_start_up_objects_and_collects_young_ones_less_often() -> None:
    saved = gc.get_threshold()
    already_frozen = gc.get_freeze_count()
    try:
        tune_collector()
        assert gc.get_freeze_count() > already_frozen
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
