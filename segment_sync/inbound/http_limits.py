"""The receiver's HTTP server limits: header read timeout, header size, connections, keep-alive.

uvicorn times out idle keep-alive connections but not a client that sends part of its request
headers and then stalls, so the protocol below closes a connection whose request headers have not
all arrived within `header_timeout_s` (answering 408 first). Body read timeouts and the memory
bound for bodies not yet authenticated are the app's (see `request_body`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 41\r\n\r\nrequest headers were not received in time"
)


@dataclass(frozen=True)
class ReceiverLimits:
    """Time and size limits at the receiver's edge (see the `inbound.*` settings)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024
    max_unverified_bytes: int = 64 * 1024 * 1024


class _HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers stall."""

    header_timeout_s = ReceiverLimits.header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # part of a request's headers, or nothing yet
            self._arm_header_timer()
        else:
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        # An idle keep-alive connection is closed by uvicorn's own timer; only partial headers here.
        if self.conn.our_state is h11.IDLE:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def server_config(app, host: str, port: int, limits: ReceiverLimits, **kwargs) -> uvicorn.Config:
    """A uvicorn config enforcing `limits` (h11: it bounds header size; httptools does not)."""
    protocol = type(
        "ReceiverH11Protocol", (_HeaderTimeoutH11,), {"header_timeout_s": limits.header_timeout_s}
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        access_log=False,
        **kwargs,
    )
