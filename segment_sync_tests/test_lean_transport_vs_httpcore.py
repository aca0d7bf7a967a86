"""LeanTransport against httpx's own transport (httpcore) on real loopback sockets: the same answers, errors and connection reuse."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from segment_sync.http import ApiClient
from segment_sync.lean_transport import LeanTransport


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def _post(
    lean: bool, handler, *, timeout_s: float = 5.0, n: int = 1, between=None, deadline_s=None
):
    async def run():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = ApiClient(
            secrets=[], timeout_s=timeout_s, max_connections=2, lean=lean, deadline_s=deadline_s
        )
        posts = []
        try:
            for i in range(n):
                if i and between:
                    between()
                posts.append(
                    await client.timed_post(f"http://127.0.0.1:{port}/x", b"1", {}, fix="x")
                )
        finally:
            await client.aclose()
            server.close()
        return posts

    return asyncio.run(run())


# 1xx ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("informational", [b"100 Continue", b"103 Early Hints"])
@pytest.mark.parametrize("split", [False, True])
def test_an_informational_answer_is_skipped(lean: bool, informational: bytes, split: bool) -> None:
    async def handle(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 " + informational + b"\r\nLink: </a>; rel=preload\r\n\r\n")
        if split:
            await writer.drain()
            await asyncio.sleep(0.1)
        writer.write(_ok(b"final"))
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()

    (post,) = _post(lean, handle)
    assert post.response is not None, post.error
    assert (post.response.status_code, post.response.content) == (200, b"final")
    assert "link" not in post.response.headers


# a keep-alive connection the server closed while the loop was busy ------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_an_idle_connection_closed_by_the_server_is_not_used(lean: bool) -> None:
    """The server (its own thread) answers keep-alive and closes the idle connection 50 ms later;
    the client's loop is busy (a CPU-bound callback) when the FIN arrives, then sends again."""
    import socketserver
    import threading

    connections = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            connections.append(1)
            data = b""
            while b"\r\n\r\n" not in data:
                data += self.request.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += self.request.recv(65536)
            self.request.sendall(_ok(b"ok"))
            time.sleep(0.05)  # a short keep-alive timeout on the server's side

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    async def run():
        client = ApiClient(secrets=[], timeout_s=5, max_connections=2, lean=lean)
        posts = []
        try:
            for i in range(2):
                if i:
                    time.sleep(0.3)  # the loop is busy while the server closes
                posts.append(
                    await client.timed_post(f"http://127.0.0.1:{port}/x", b"1", {}, fix="x")
                )
        finally:
            await client.aclose()
        return posts

    try:
        posts = asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    assert [p.error for p in posts] == [None, None]
    assert len(connections) == 2


# aclose while a request is in flight --------------------------------------------------------------


def test_aclose_while_a_request_is_in_flight_leaves_no_open_connection() -> None:
    async def run():
        async def handle(reader, writer):
            await _read_request(reader)
            await asyncio.sleep(0.3)
            writer.write(_ok(b"late"))
            await writer.drain()
            try:
                await reader.read()  # until the client closes
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(max_connections=2)
        client = httpx.AsyncClient(transport=transport)
        task = asyncio.ensure_future(client.post(f"http://127.0.0.1:{port}/", content=b"1"))
        await asyncio.sleep(0.1)
        await client.aclose()
        with contextlib.suppress(httpx.HTTPError):
            await task
        open_ = [c for idle in transport._idle.values() for c in idle if not c.closed]
        server.close()
        return open_

    assert asyncio.run(run()) == []


# a request body of unknown length -----------------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_a_streamed_request_body_reaches_the_server_intact(lean: bool) -> None:
    received: list[bytes] = []

    async def run():
        async def handle(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            if b"transfer-encoding: chunked" in head.lower():
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += chunk[:-2]
            else:
                body = b"<unframed>"
            received.append(body)
            writer.write(_ok(b"ok", b"Connection: close\r\n"))
            await writer.drain()
            writer.close()

        async def parts():
            yield b"hello "
            yield b"world"

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(max_connections=1) if lean else None
        async with httpx.AsyncClient(transport=transport, timeout=2) as client:
            try:
                await client.post(f"http://127.0.0.1:{port}/", content=parts())
            except httpx.HTTPError as exc:
                received.append(repr(exc).encode())
        server.close()

    asyncio.run(run())
    assert received == [b"hello world"]


# a header value with CR LF (httpcore refuses to send it) ------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_a_header_value_with_crlf_is_never_sent(lean: bool) -> None:
    heads: list[bytes] = []

    async def run():
        async def handle(reader, writer):
            heads.append(await _read_request(reader))
            writer.write(_ok(b"ok", b"Connection: close\r\n"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(max_connections=1) if lean else None
        async with httpx.AsyncClient(transport=transport, timeout=2) as client:
            with pytest.raises(httpx.HTTPError):
                await client.post(
                    f"http://127.0.0.1:{port}/", content=b"", headers={"X-A": "a\r\nX-Injected: 1"}
                )
        server.close()

    asyncio.run(run())
    assert not any(b"X-Injected" in h for h in heads)


# cancellation mid-request: the connection is never reused -----------------------------------------


def test_a_cancelled_request_does_not_leave_its_connection_for_reuse() -> None:
    connections = []

    async def run():
        async def handle(reader, writer):
            connections.append(1)
            try:
                while True:
                    request = await _read_request(reader)
                    if b"slow" in request.split(b"\r\n")[0]:
                        await asyncio.sleep(0.3)
                        writer.write(_ok(b"slow answer"))
                    else:
                        writer.write(_ok(b"fast answer"))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(transport=LeanTransport(max_connections=1)) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.post(f"http://127.0.0.1:{port}/slow", content=b"1")
            await asyncio.sleep(0.4)
            response = await client.post(f"http://127.0.0.1:{port}/fast", content=b"1")
        server.close()
        return response.content

    assert asyncio.run(run()) == b"fast answer"
    assert len(connections) == 2


# a response cut before its Content-Length ----------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_a_cut_answer_is_a_network_error(lean: bool) -> None:
    async def handle(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.close()

    (post,) = _post(lean, handle)
    assert post.response is None and "RemoteProtocolError" in post.error


# HEAD ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_head_answers_end_with_their_headers(lean: bool) -> None:
    async def run():
        async def handle(reader, writer):
            try:
                while True:
                    await _read_request(reader)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = LeanTransport(max_connections=1) if lean else None
        async with httpx.AsyncClient(transport=transport, timeout=2) as client:
            r1 = await client.head(f"http://127.0.0.1:{port}/")
            r2 = await client.head(f"http://127.0.0.1:{port}/")
        server.close()
        return [(r.status_code, r.headers["content-length"], r.content) for r in (r1, r2)]

    assert asyncio.run(run()) == [(200, "5", b"")] * 2


# read timeout counts inactivity ------------------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_a_trickling_answer_is_no_read_timeout(lean: bool) -> None:
    async def handle(reader, writer):
        await _read_request(reader)
        answer = _ok(b"abcdef")
        for i in range(len(answer) // 8 + 1):
            writer.write(answer[i * 8 : i * 8 + 8])
            await writer.drain()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        writer.close()

    # The read timeout alone (ApiClient's whole-request deadline is tested in test_http.py).
    (post,) = _post(lean, handle, timeout_s=0.5, deadline_s=30)
    assert post.response is not None and post.response.content == b"abcdef", post.error


# TLS: verify, SNI, SSL_CERT_FILE ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory) -> Path:
    """A self-signed certificate for `localhost` (made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return directory


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize(
    ("host", "trusted", "ok"),
    [("localhost", True, True), ("localhost", False, False), ("127.0.0.1", True, False)],
)
def test_tls_verifies_the_certificate_and_sends_sni(
    monkeypatch, cert_dir: Path, lean: bool, host: str, trusted: bool, ok: bool
) -> None:
    import ssl

    names: list = []
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_dir / "cert.pem"))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)

    async def run():
        async def handle(reader, writer):
            try:
                await _read_request(reader)
                writer.write(_ok(b"secure", b"Connection: close\r\n"))
                await writer.drain()
            except Exception:  # noqa: BLE001
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        client = ApiClient(secrets=[], timeout_s=5, max_connections=1, lean=lean)
        try:
            return await client.timed_post(f"https://{host}:{port}/", b"1", {}, fix="x")
        finally:
            await client.aclose()
            server.close()

    post = asyncio.run(run())
    if ok:
        assert post.response is not None and post.response.content == b"secure", post.error
        assert names == ["localhost"]
    else:
        assert post.response is None and "ConnectError" in post.error, post.error


# an answer read until close, cut by a reset -------------------------------------------------------


@pytest.mark.parametrize("lean", [False, True])
def test_an_unframed_answer_cut_by_a_reset_is_an_error(lean: bool) -> None:
    import struct

    async def handle(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + b'{"results": [')
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    (post,) = _post(lean, handle)
    assert post.response is None, (post.response.status_code, post.response.content)


# the Antavo client behind an Early Hints answer ---------------------------------------------------


def test_antavo_events_behind_an_early_hints_answer_are_done_not_failed() -> None:
    import orjson

    from segment_sync.antavo.client import AntavoClient
    from segment_sync.http import RetryPolicy

    async def handle(reader, writer):
        body = orjson.loads((await _read_request(reader)).partition(b"\r\n\r\n")[2])
        results = orjson.dumps(
            {"results": [{"events": [{"id": f"id{i}"}]} for i in range(len(body["events"]))]}
        )
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(_ok(results, b"Connection: close\r\n"))
        await writer.drain()
        writer.close()

    async def run():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        retry = RetryPolicy(2, backoff_base_s=0.01, backoff_cap_s=0.05)
        async with AntavoClient(
            f"http://127.0.0.1:{port}", "key_1", "secret-value", stack="s1", retry=retry
        ) as client:
            results = await client.send_events([{"customer": "c", "action": "a"}] * 3)
        server.close()
        return results

    results = asyncio.run(run())
    # main: ok=False, retryable=False, unknown=False, "HTTP 103: Early Hints" -> marked failed
    assert [(r.ok, r.status_code) for r in results] == [(True, 200)] * 3, results[0]
