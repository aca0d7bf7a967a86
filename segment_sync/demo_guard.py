"""One demo at a time: an flock held for the demo's lifetime, and its ports checked free.

The flock is dropped by the kernel when its holder dies, so a killed demo never blocks the next;
the port check catches what a killed demo may leave behind (its children still listening) and
any other program on a demo port.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "demo.lock"
DAGSTER_UI = "http://127.0.0.1:3000"


class DemoRefused(Exception):
    """The demo cannot start here now; the message names the problem and the fix."""


@contextmanager
def demo_guard(data_dir: Path) -> Iterator[None]:
    """Hold `data_dir/demo.lock` (with this pid in it) until the block ends.

    DemoRefused, naming the holder's pid, when another live demo holds it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise DemoRefused(_running_message(handle.read().strip())) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def running_demo(data_dir: Path) -> str | None:
    """The pid ("" while it is starting) of the demo holding `data_dir/demo.lock`, or None."""
    path = data_dir / LOCK_NAME
    try:
        handle = open(path)  # noqa: SIM115 (closed below; never created here)
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip()
        fcntl.flock(handle, fcntl.LOCK_UN)  # free: no demo runs here
        return None


def _running_message(pid: str) -> str:
    """The refusal when the lock is held: who holds it and how to stop it."""
    if not pid.isdigit():  # the holder is between taking the lock and writing its pid
        return (
            f"the demo is already running ({DAGSTER_UI}); stop it with Ctrl-C in its terminal "
            "first, then run `make run` again"
        )
    return (
        f"the demo is already running (pid {pid}, {DAGSTER_UI}); stop it with Ctrl-C in its "
        f"terminal or `kill {pid}` first, then run `make run` again"
    )


def check_ports_free(ports: Mapping[int, str], host: str = "127.0.0.1") -> None:
    """DemoRefused naming the first of `ports` (port: what the demo runs there) already taken."""
    for port, label in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR: a port in TIME_WAIT after the last demo stopped is free to use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise DemoRefused(
                    f"port {port} on {host}, where the demo starts the {label}, is already in "
                    f"use (a demo started from another folder, or what a killed demo left "
                    f"running); stop whatever listens there (`lsof -i :{port}` shows it) first"
                ) from None
