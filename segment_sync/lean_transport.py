"""A lean HTTP/1.1 keep-alive transport for httpx: asyncio protocols and httptools, no anyio.

httpcore's pool costs about 0.6 ms of CPU per request here (it polls every pooled connection,
goes through anyio, writes headers and body separately); this transport needs a fraction of it.
httpx stays on top (request building, decoding, proxies from the environment, which httpx
routes to its own transports), so callers see the same `httpx.Response` and exceptions; a client
without auth skips httpx's auth, redirect and cookie layers (ApiClient._send_lean).
HTTP/1.1 only; TLS with httpx's default context; chunked and read-until-close answers.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections import defaultdict
from collections.abc import Mapping

import httptools
import httpx

KEEPALIVE_EXPIRY_S = 5.0  # httpx's default: an idle connection older than this is not reused
# A response extension: set (to what was seen) when the body passed the size limit and was cut.
CUT_SHORT = "segment_sync.cut_short"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its answer parsed by httptools."""

    def __init__(self, max_body_bytes: int | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.max_body_bytes = max_body_bytes
        self._body_size = 0
        self.cut_short: str | None = None  # what passed the limit, when the body was cut
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._reason = b""
        self._headers_done = False
        self._framed = True  # Content-Length or chunked: the parser sees the answer's end
        self.encoded = False  # the answer has a Content-Encoding: its body is not its content
        self.keep_alive = False  # the last answer allows another request on this connection
        self.head_only = False  # a HEAD answer ends with its headers
        self.activity = 0  # bumped by every read, for the read timeout (inactivity, as httpx)
        self._timer: asyncio.TimerHandle | None = None  # the read timeout's (see _watch)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.activity += 1
        if self._answer is None or self._answer.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            if self._headers_done and not self._framed and exc is None:
                self.on_message_complete()  # read-until-close: the close ends the body
            else:
                self._answer.set_exception(
                    httpx.RemoteProtocolError("Server disconnected without sending a response.")
                )

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        names = {name.lower() for name, _ in self._headers}
        self._framed = b"content-length" in names or b"transfer-encoding" in names
        self.encoded = b"content-encoding" in names
        if self.head_only:
            self.on_message_complete()
            return
        declared = next((v for n, v in self._headers if n.lower() == b"content-length"), b"")
        limit = self.max_body_bytes
        if limit is not None and declared.isdigit() and int(declared) > limit:
            # Said up front (as read_capped says it): none of it is read.
            self._cut(f"Content-Length {int(declared):,}")

    def _cut(self, seen: str) -> None:
        """The answer ends here for the caller; the connection is closed, never reused."""
        self.cut_short = seen
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.cut_short is not None:
            return
        limit = self.max_body_bytes
        self._body_size += len(body)
        if limit is not None and self._body_size > limit:
            self._cut(f"more than {limit:,} bytes arrived")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An informational answer (100 Continue, 103 Early Hints): the final one follows.
            self._headers, self._body, self._reason = [], [], b""
            self._headers_done, self._framed = False, True
            return
        # Asked here: after the callback the parser has reset and answers False.
        self.keep_alive = self._framed and self._parser.should_keep_alive()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(self._parser.get_status_code())

    # requests
    def readable_while_idle(self) -> bool:
        """Has the server sent anything (its FIN, a 408) since the last answer? Asked of the
        socket, as httpcore does: the loop may not have read it yet."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def _watch(self, seen: int, read_timeout: float) -> None:
        """Fail the answer after a whole read timeout without a byte, as httpx counts it."""
        self._timer = None
        if self._answer is None or self._answer.done():
            return
        if self.activity == seen:
            self._fail(httpx.ReadTimeout("timed out waiting for the response"))
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(read_timeout, self._watch, self.activity, read_timeout)

    def close(self) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()  # nobody waits for it any more (a timeout, a cancelled call)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    async def exchange(
        self, head: bytes, body: bytes, read_timeout: float | None
    ) -> tuple[httpx.Response, bytes | None]:
        """Send one request (head and body in one write) and read its whole answer: the
        response, unread, and its body when that is its content (no Content-Encoding)."""
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._reason = [], [], b""
        self._headers_done, self._framed, self.keep_alive = False, True, False
        self.encoded = False
        self._body_size, self.cut_short = 0, None
        assert self.transport is not None
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        if read_timeout is not None:  # a timer, not wait_for and shield: a third of the CPU
            self._watch(-1, read_timeout)
        try:
            status = await self._answer
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": self._reason}
        if self.cut_short is not None:
            extensions[CUT_SHORT] = self.cut_short
        if self.head_only or not self.keep_alive or self.cut_short is not None:
            self.close()
        body = b"".join(self._body)
        response = httpx.Response(
            status, headers=self._headers, stream=httpx.ByteStream(body), extensions=extensions
        )
        return response, None if self.encoded else body


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive connections per origin, at most `max_connections` in use at once."""

    def __init__(
        self,
        *,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        """`max_body_bytes`: an answer's body is cut there (the response says so in its
        `CUT_SHORT` extension) and its connection closed."""
        self.max_body_bytes = max_body_bytes
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._idle: defaultdict[tuple[bytes, bytes, int], list[_Connection]] = defaultdict(list)
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if request.headers.get("transfer-encoding", "").lower() == "chunked":
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        timeouts = request.extensions.get("timeout", {})
        response, _ = await self.send(
            request.method, request.url, request.headers.raw, body, timeouts
        )
        return response

    async def send(
        self,
        method: str,
        url: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> tuple[httpx.Response, bytes | None]:
        """One request from its parts (`headers` all of them, as sent; `body` as framed by
        them): the response, unread, and its body when that is its content (no
        Content-Encoding), which the caller may take as read. ApiClient._send_lean builds the
        parts without httpx's request model."""
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        port = url.port or (443 if scheme == b"https" else 80)
        origin = (scheme, url.raw_host, port)
        head = b"".join(
            [method.encode("ascii"), b" ", url.raw_path, b" HTTP/1.1\r\n"]
            + [b"%s: %s\r\n" % (name, value) for name, value in headers]
            + [b"\r\n"]
        )
        # A line break of its own in a header (or the method) would smuggle in another header:
        # the head holds only those it ends its lines with. Counted, not searched per header.
        lines = len(headers) + 2
        if head.count(b"\r") != lines or head.count(b"\n") != lines:
            raise httpx.LocalProtocolError("a request header holds a line break")
        async with self._slots:
            if self._closed:
                raise httpx.ConnectError("the transport is closed")
            conn = self._reuse(origin) or await self._connect(origin, timeouts.get("connect"))
            conn.head_only = method == "HEAD"
            try:
                answer = await conn.exchange(head, body, timeouts.get("read"))
            except BaseException as exc:
                conn.close()  # cancelled or failed mid-answer: never reused
                if isinstance(exc, OSError):
                    raise httpx.WriteError(str(exc) or type(exc).__name__) from None
                raise
            if self._closed:
                conn.close()  # the pool closed while this request ran
            elif not conn.closed:
                conn.idle_since = time.monotonic()
                self._idle[origin].append(conn)
            return answer

    def _reuse(self, origin: tuple[bytes, bytes, int]) -> _Connection | None:
        idle = self._idle[origin]
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if (
                not conn.closed
                and now - conn.idle_since < KEEPALIVE_EXPIRY_S
                and not conn.readable_while_idle()
            ):
                return conn
            conn.close()
        return None

    async def _connect(
        self, origin: tuple[bytes, bytes, int], timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        secure = scheme == b"https"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self.max_body_bytes),
                    host.decode("ascii"),
                    port,
                    ssl=self._ssl if secure else None,
                    server_hostname=host.decode("ascii") if secure else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return conn

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
