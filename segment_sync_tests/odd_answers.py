"""Small real HTTP servers on loopback that answer as no documented API does: a fixed status and
body (a captive portal, a proxy), or an answer dripped a few bytes at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from segment_sync.standins.server import serve_in_thread


@contextmanager
def answering(status: int, body: bytes, content_type: str = "application/json") -> Iterator[str]:
    """A server answering every POST or GET with `status` and `body`; yields its base URL."""

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(body, status, media_type=content_type)

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
    with serve_in_thread(app) as url:
        yield url


@contextmanager
def dripping(
    body: bytes, every_s: float, chunk: int = 1, status: int = 200, length: bool = True
) -> Iterator[str]:
    """A server sending its headers at once, then `chunk` bytes of `body` every `every_s`
    seconds (with a Content-Length, or chunked when `length` is False)."""

    async def drip():
        for start in range(0, len(body), chunk):
            if start:
                await asyncio.sleep(every_s)
            yield body[start : start + chunk]

    async def answer(request: Request) -> Response:
        await request.body()
        headers = {"Content-Length": str(len(body))} if length else None
        return StreamingResponse(drip(), status, headers, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
    with serve_in_thread(app) as url:
        yield url
