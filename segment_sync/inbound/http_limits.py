"""The receiver's HTTP server limits: header read timeout, header size, connections, keep-alive.

uvicorn times out idle keep-alive connections but not a client that sends part of its request
headers and then stalls, so the protocol below closes a connection whose request headers have not
all arrived within `header_timeout_s` (answering 408 first). Body read timeouts and the memory
bound for bodies not yet authenticated are the app's (see `request_body`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 41\r\n\r\nrequest headers were not received in time"
)


_TIMER_SLACK_S = 0.002


@dataclass(frozen=True)
class ReceiverLimits:
    """Time and size limits at the receiver's edge (see the `inbound.*` settings)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024
    max_unverified_bytes: int = 64 * 1024 * 1024


class _EdgeHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding request headers in size and in time.

    llhttp (unlike h11) has no header size limit of its own: bytes received while a request's
    headers are incomplete are counted here, and past `max_header_bytes` the request gets a 400.

    The header clock is one timer per connection, not one per request: each request notes when
    its first byte came (`_since`), and the timer, when it fires, either refuses headers that are
    late or sets itself again for the current request's deadline (or a full period when no
    headers are awaited). A timer armed and cancelled per request cost about a tenth of the
    server's CPU for a single-event request.
    """

    header_timeout_s = ReceiverLimits.header_timeout_s
    max_header_bytes = ReceiverLimits.max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._late_behind_answers = False
        self._header_bytes = self._parsed_header_bytes = 0
        super().connection_made(transport)
        self._since: float | None = self.loop.time()  # a silent connection is timed out too
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
            # Bytes that start no request (llhttp skips blank lines before a request line)
            # still start the clock, so "\r\n" now and then holds no connection.
            if self._since is None:
                self._since = self.loop.time()
        super().data_received(data)
        if (
            self._awaiting_headers
            and self._header_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self.send_400_response(
                f"Request headers are larger than {self.max_header_bytes} bytes."
            )

    def on_message_begin(self) -> None:
        # The clock runs from a request's first byte to its last header, request by request: a
        # busy keep-alive connection is never timed out, an idle one is uvicorn's to close.
        self._awaiting_headers = True
        if self._since is None:  # a pipelined request that began inside an earlier read
            self._since = self.loop.time()
        super().on_message_begin()

    # uvicorn's own on_url and on_header, with the count added: one Python call per header,
    # as uvicorn makes (an override calling super() made two more).
    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Whole headers that arrived in one read: the running count above never saw them apart.
        counted = self._parsed_header_bytes + len(name) + len(value) + 4
        if counted > self.max_header_bytes:
            raise httptools.HttpParserError("request headers too large")  # uvicorn answers 400
        self._parsed_header_bytes = counted
        name = name.lower()
        # llhttp keeps trailing OWS, which RFC 9110 section 5.5 excludes from the value.
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def _count_header_bytes(self, n: int) -> None:
        self._parsed_header_bytes += n
        if self._parsed_header_bytes > self.max_header_bytes:
            raise httptools.HttpParserError("request headers too large")  # uvicorn answers 400

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._late_behind_answers = False
        self._since = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True  # the next request on this keep-alive connection
        self._header_bytes = self._parsed_header_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._late_behind_answers and not self._answering():
            self._refuse_late_headers()

    def _answering(self) -> bool:
        """Whether a request whose headers did arrive is still being (or waiting to be) answered."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        since = self._since
        if self._awaiting_headers and since is not None:
            left = since + self.header_timeout_s - self.loop.time()
            if left <= _TIMER_SLACK_S:  # libuv timers round to milliseconds
                self._headers_are_late()
                return
        else:  # no headers awaited: look again a period on
            left = self.header_timeout_s
        self._header_timer = self.loop.call_later(left, self._headers_late)

    def _headers_are_late(self) -> None:
        # An idle keep-alive connection is closed by uvicorn's own timer; only partial headers here.
        if self._answering():
            # A pipelined request stalled behind one still being answered: the answers owed go
            # out first, then the 408 (on_response_complete). The clock keeps running: should
            # these headers still complete, the connection's later requests need it.
            self._late_behind_answers = True
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)
        else:
            self._refuse_late_headers()

    def _refuse_late_headers(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


def server_config(app, host: str, port: int, limits: ReceiverLimits, **kwargs) -> uvicorn.Config:
    """A uvicorn config enforcing `limits`, on httptools (about twice h11's requests per CPU-s)."""
    protocol = type(
        "ReceiverHttpToolsProtocol",
        (_EdgeHttpTools,),
        {"header_timeout_s": limits.header_timeout_s, "max_header_bytes": limits.max_header_bytes},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        limit_concurrency=limits.max_connections,
        access_log=False,
        **kwargs,
    )
