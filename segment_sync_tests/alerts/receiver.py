"""A real incoming-webhook receiver on loopback that records what alerts were POSTed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from segment_sync.standins.server import serve_in_thread

TOKEN = "T0SECRET/B0SECRET/xoxwebhooktoken0123456789"


class AlertReceiver:
    """Answers each POST with the next status of `answers` (then 200); `url` is set once served."""

    def __init__(self) -> None:
        self.url = ""
        self.answers: list[int] = []
        self.attempts: list[dict] = []  # every body POSTed, answered or not
        self.delivered: list[str] = []  # the texts of the bodies answered 200

        async def hook(request: Request) -> PlainTextResponse:
            body = await request.json()
            self.attempts.append(body)
            status = self.answers.pop(0) if self.answers else 200
            if status == 200:
                self.delivered.append(body["text"])
            return PlainTextResponse("ok" if status == 200 else "server_error", status_code=status)

        self.app = Starlette(routes=[Route("/services/{rest:path}", hook, methods=["POST"])])


@contextmanager
def serve_receiver() -> Iterator[AlertReceiver]:
    """The receiver on a free loopback port; its `url` embeds TOKEN, as Slack's do."""
    receiver = AlertReceiver()
    with serve_in_thread(receiver.app) as base:
        receiver.url = f"{base}/services/{TOKEN}"
        yield receiver
