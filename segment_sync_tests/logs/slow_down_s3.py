"""An S3 endpoint that answers 503 SlowDown (real HTTP on loopback): what S3 answers a caller
over its request rate, a blip a later run gets past. Every request, or (in front of the test S3
server) only the PUTs whose path holds a given part, the others passed on."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>"
)


class _SlowDown(BaseHTTPRequestHandler):
    upstream: str | None = None  # host:port requests not slowed down go to
    slowed: str = ""  # a PUT whose path holds it is slowed down (with an upstream)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.upstream and not (self.command == "PUT" and self.slowed in self.path):
            self._pass_on(body)
            return
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(SLOW_DOWN)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(SLOW_DOWN)

    def _pass_on(self, body: bytes) -> None:
        assert self.upstream is not None
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body, dict(self.headers.items()))
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def slow_down_s3(upstream: str | None = None, slowed: str = "") -> Iterator[str]:
    """The endpoint URL of a loopback server answering SlowDown, until the block ends: to
    every request, or with `upstream` (an endpoint URL) to the PUTs whose path holds `slowed`."""
    handler = type(
        "SlowDown",
        (_SlowDown,),
        {"upstream": upstream.removeprefix("http://") if upstream else None, "slowed": slowed},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port() -> str:
    """An endpoint URL on loopback where nothing listens (a network error)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
