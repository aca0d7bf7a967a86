"""Several receiver processes on one listening socket: a small pre-fork supervisor.

Each worker is a forked process with its own event loop, buffer connection and group-commit
writer; they share the socket's accept queue, and the buffer's unique messageId keeps a resend
that reaches two workers stored once. The parent only watches: a worker that dies is replaced,
and SIGTERM or SIGINT is passed to every worker, which finishes and commits what it acknowledged.
uvicorn's own `--workers` needs an importable app and a picklable config; this receiver is built
from settings in the parent, so it forks instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # a worker that dies at once is not restarted in a tight loop
STOP_GRACE_S = 30.0  # how long workers may take to finish after SIGTERM before SIGKILL


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for the workers to accept on (uvicorn calls listen on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _fork(serve: Callable[[socket.socket], None], sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:  # the worker: serve until told to stop, never return into the parent's code
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            serve(sock)
        except BaseException:  # noqa: BLE001 - reported, then the worker exits non-zero
            log.exception("receiver worker %d failed", os.getpid())
            code = 1
        finally:
            os._exit(code)
    return pid


def serve_workers(
    workers: int, sock: socket.socket, serve: Callable[[socket.socket], None]
) -> None:
    """Run `serve(sock)` in `workers` forked processes until SIGTERM or SIGINT."""
    stopping = False

    def _stop(signum: int, _frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    alive: set[int] = set()
    try:
        for _ in range(workers):
            alive.add(_fork(serve, sock))
        log.info("webhook receiver: %d worker processes %s", workers, sorted(alive))
        while not stopping:
            # Polled: a blocking waitpid is resumed after a signal (PEP 475) and never sees it.
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.2)
                continue
            if pid not in alive:
                continue
            alive.discard(pid)
            if stopping:  # it exited because we are stopping: nothing to replace
                break
            log.error("receiver worker %d exited (%s); starting another", pid, _describe(status))
            time.sleep(RESTART_PAUSE_S)
            if not stopping:
                alive.add(_fork(serve, sock))
    finally:
        _stop_all(alive)
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()


def _stop_all(alive: set[int]) -> None:
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                alive.discard(pid)
        time.sleep(0.05)
    for pid in alive:
        log.error("receiver worker %d did not stop within %g s; killing it", pid, STOP_GRACE_S)
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"
