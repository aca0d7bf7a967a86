"""A local S3-compatible server for the object-storage tests: moto's server, in its own process.

Run as `python -m segment_sync_tests.logs.s3_server`: it binds a free port on 127.0.0.1, prints
`PORT <n>` and serves until killed. Requests are handled one at a time (a lock around moto's app)
because moto checks a conditional write (`If-None-Match: *`, `If-Match`) and then stores the
object in two steps; real S3 does both atomically, which is what the maintenance lease relies on.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class OneAtATime:
    """A WSGI app that serves one request at a time, body included."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class QuietHandler(MotoRequestHandler):
    """No access log line per request (the tests make thousands)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def main() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a parent may have left it ignored
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
