"""LeanTransport against a real loopback server that answers with scripted bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from segment_sync.http import ApiClient, TimedPost

Answer = Callable[[bytes], bytes | None]  # request bytes -> raw answer (None: close, say nothing)


async def _serve(answer: Answer, connections: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                raw = answer(request)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"connection: close" in raw.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _post_all(answer: Answer, bodies: list[bytes], timeout_s: float = 5.0) -> tuple[list, int]:
    """POST each body in turn through a lean ApiClient; (TimedPosts, connections opened)."""

    async def run() -> tuple[list, int]:
        connections: list[int] = []
        server = await _serve(answer, connections)
        port = server.sockets[0].getsockname()[1]
        client = ApiClient(secrets=[], timeout_s=timeout_s, max_connections=2, lean=True)
        try:
            posts = [
                await client.timed_post(f"http://127.0.0.1:{port}/x", body, {}, fix="it runs")
                for body in bodies
            ]
        finally:
            await client.aclose()
            server.close()
        return posts, len(connections)

    return asyncio.run(run())


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_a_keep_alive_connection_carries_the_next_requests() -> None:
    posts, connections = _post_all(lambda r: _ok(r.rpartition(b"\r\n\r\n")[2]), [b"a", b"bb", b"c"])
    assert [p.response.content for p in posts] == [b"a", b"bb", b"c"]
    assert connections == 1


def test_a_connection_the_server_closes_is_not_reused() -> None:
    posts, connections = _post_all(lambda r: _ok(b"x", b"Connection: close\r\n"), [b"1", b"2"])
    assert [p.response.status_code for p in posts] == [200, 200]
    assert connections == 2


def test_a_chunked_answer_is_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 207 Multi\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    posts, _ = _post_all(lambda r: chunked, [b"1", b"2"])
    assert [(p.response.status_code, p.response.content) for p in posts] == [(207, b"abcde")] * 2
    assert posts[0].response.reason_phrase == "Multi"


def test_an_answer_without_length_is_read_until_the_server_closes() -> None:
    posts, _ = _post_all(
        lambda r: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", [b"1"]
    )
    assert posts[0].response.content == b"until close"


def test_a_gzip_answer_is_decoded_and_headers_are_kept() -> None:
    packed = gzip.compress(b'{"ok": true}')
    extra = b"Content-Encoding: gzip\r\nRetry-After: 7\r\n"
    posts, _ = _post_all(lambda r: _ok(packed, extra), [b"1"])
    assert posts[0].response.json() == {"ok": True}
    assert posts[0].response.headers["retry-after"] == "7"


def test_a_server_that_closes_without_answering_is_a_network_error() -> None:
    posts, _ = _post_all(lambda r: None, [b"1"])
    assert posts[0].response is None
    assert "RemoteProtocolError" in posts[0].error and "it runs" in posts[0].error


def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    async def run() -> str | None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # The transport's read timeout, not ApiClient's whole-request deadline (test_http.py).
        client = ApiClient(secrets=[], timeout_s=0.3, max_connections=1, lean=True, deadline_s=30)
        try:
            post = await client.timed_post(f"http://127.0.0.1:{port}/", b"1", {}, fix="x")
        finally:
            await client.aclose()
            server.close()
        assert post.response is None
        return post.error

    assert "ReadTimeout" in (asyncio.run(run()) or "")


def test_a_refused_connection_is_a_connect_error() -> None:
    async def run() -> str | None:
        client = ApiClient(secrets=[], timeout_s=2, max_connections=1, lean=True)
        try:
            return (await client.timed_post("http://127.0.0.1:1/", b"1", {}, fix="x")).error
        finally:
            await client.aclose()

    assert "ConnectError" in (asyncio.run(run()) or "")


def test_a_malformed_answer_is_a_protocol_error() -> None:
    posts, _ = _post_all(lambda r: b"NOT HTTP AT ALL\r\n\r\n", [b"1"])
    assert posts[0].response is None and "RemoteProtocolError" in posts[0].error


@pytest.mark.parametrize("scheme", ["ftp"])
def test_an_unsupported_scheme_is_refused(scheme: str) -> None:
    async def run() -> None:
        client = ApiClient(secrets=[], timeout_s=1, max_connections=1, lean=True)
        try:
            with pytest.raises(httpx.UnsupportedProtocol):
                await client._http.post(f"{scheme}://127.0.0.1/", content=b"1")
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_proxy_in_the_environment_still_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []

    def proxy(request: bytes) -> bytes:
        seen.append(request.split(b"\r\n")[0])
        return _ok(b"via proxy")

    async def run() -> bytes:
        server = await _serve(proxy, [])
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = ApiClient(secrets=[], timeout_s=5, max_connections=1, lean=True)
        try:
            post = await client.timed_post("http://antavo.invalid/events", b"1", {}, fix="x")
        finally:
            await client.aclose()
            server.close()
        assert post.response is not None, post.error
        return post.response.content

    assert asyncio.run(run()) == b"via proxy"
    assert seen == [b"POST http://antavo.invalid/events HTTP/1.1"]


def _post_one(answer: Answer, *, lean: bool) -> httpx.Response:
    """One POST through an ApiClient, lean or httpx's own transport; its response."""

    async def run() -> httpx.Response:
        server = await _serve(answer, [])
        port = server.sockets[0].getsockname()[1]
        client = ApiClient(secrets=[], timeout_s=5, max_connections=1, lean=lean)
        try:
            post = await client.timed_post(f"http://127.0.0.1:{port}/x", b"1", {}, fix="it runs")
        finally:
            await client.aclose()
            server.close()
        assert post.response is not None
        return post.response

    return asyncio.run(run())


@pytest.mark.parametrize(
    "extra, body",
    [
        (b"Content-Type: application/json\r\n", '{"a": "\u0151"}'.encode()),
        (b"Content-Type: text/plain; Charset=latin-1\r\n", "\u0151".encode()),
        (b"Content-Type: text/plain; charset=utf-8\r\n", b"\xff ok"),
        (b"", b"\xc5\x91"),
        (
            b"Content-Encoding: gzip\r\nContent-Type: text/plain\r\n",
            gzip.compress(b"zipped", mtime=0),
        ),
    ],
)
def test_a_lean_answer_reads_as_httpx_reads_it(extra: bytes, body: bytes) -> None:
    """Content, text and its encoding, headers: the same, though the lean path skips
    httpx's decoder for an answer without Content-Encoding and its charset parsing."""
    lean = _post_one(lambda r: _ok(body, extra), lean=True)
    plain = _post_one(lambda r: _ok(body, extra), lean=False)
    assert (lean.status_code, lean.content, lean.text) == (
        plain.status_code,
        plain.content,
        plain.text,
    )
    assert lean.encoding == plain.encoding
    assert lean.headers.raw == plain.headers.raw


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "a\r\nX-Injected: 1"},
        {"X-A": "a\nX-Injected: 1"},
        {"X-A": "a\rX-Injected: 1"},
        {"X-A\r\nX-Injected": "1"},
        {"X-B": "b", "X-A\nX-Injected": "1"},
    ],
)
def test_a_line_break_in_a_header_is_refused_before_anything_is_sent(headers) -> None:
    """The lean path's own header check (not httpx's): nothing reaches the server."""
    requests: list[bytes] = []

    async def run() -> TimedPost:
        server = await _serve(lambda r: requests.append(r) or _ok(b"ok"), [])
        port = server.sockets[0].getsockname()[1]
        async with ApiClient(secrets=[], timeout_s=2, max_connections=1, lean=True) as client:
            post = await client.timed_post(f"http://127.0.0.1:{port}/x", b"1", headers, fix="-")
        server.close()
        return post

    post = asyncio.run(run())
    assert post.response is None and post.error_type is httpx.LocalProtocolError
    assert requests == []


def test_a_lean_response_knows_its_request_as_httpx_does() -> None:
    """response.url and raise_for_status() work on the lean path too (httpx's send sets the
    request; the lean path makes it when asked)."""
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
    lean = _post_one(lambda r: missing, lean=True)
    plain = _post_one(lambda r: missing, lean=False)
    assert (lean.request.method, lean.url.path) == (plain.request.method, plain.url.path)
    assert lean.url.path == "/x" and lean.request.method == "POST"
    for response in (lean, plain):
        with pytest.raises(httpx.HTTPStatusError, match="404 Not Found"):
            response.raise_for_status()


# What a caller may read of an httpx response it was handed (read and closed).
RESPONSE_ATTRIBUTES = [
    "status_code", "reason_phrase", "http_version", "headers", "content", "text", "encoding",
    "charset_encoding", "is_closed", "is_stream_consumed", "is_success", "is_error",
    "has_redirect_location", "history", "next_request", "links", "num_bytes_downloaded",
]  # fmt: skip


def test_a_lean_response_answers_every_attribute_as_httpx_does() -> None:
    """A lean response is the httpx Response its callers expect: every attribute reads as on
    httpx's own path, and `elapsed` (which httpx's send sets on close) is there too."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    lean = _post_one(lambda r: answer, lean=True)
    plain = _post_one(lambda r: answer, lean=False)
    for name in RESPONSE_ATTRIBUTES:
        assert getattr(lean, name) == getattr(plain, name), name
    assert lean.json() == plain.json() == {}
    assert isinstance(lean.elapsed, timedelta) and lean.elapsed > timedelta(0)
    assert isinstance(plain.elapsed, timedelta)


def _sent_with(headers: dict[str, str], *, lean: bool) -> bytes:
    """The bytes a server receives for one POST of b"hello" with `headers` (head and body)."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            body = await reader.readuntil(b"0\r\n\r\n")
        else:
            body = await reader.readexactly(5)
        received.append(head + body)
        writer.write(_ok(b"ok"))
        await writer.drain()
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with ApiClient(secrets=[], timeout_s=5, max_connections=1, lean=lean) as client:
            post = await client.timed_post(f"http://127.0.0.1:{port}/x", b"hello", headers, fix="-")
        server.close()
        assert post.response is not None and post.response.status_code == 200

    asyncio.run(run())
    return received[0]


def test_a_body_the_caller_sends_chunked_is_framed_as_httpx_frames_it() -> None:
    """The lean path sends a bytes body as given: a Transfer-Encoding header takes httpx's
    framing, or the server would read `hello` as a chunk size."""
    headers = {"Transfer-Encoding": "chunked"}
    lean, plain = _sent_with(headers, lean=True), _sent_with(headers, lean=False)
    assert lean.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert lean.split(b"\r\n\r\n", 1)[1] == plain.split(b"\r\n\r\n", 1)[1]
