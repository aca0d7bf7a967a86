"""The real parts the whole-pipeline property test drives, set up once per module.

The Segment and Antavo stand-ins serve over loopback HTTP, each behind a `KillSwitch` that can
SIGKILL a `segment-sync run` process while one of its requests is being answered. The webhook
receiver is `segment-sync serve-webhooks`, its own process, with a shared secret and a bearer
token. Runs are `segment-sync run outbound|inbound` subprocesses. A small tmpfs stands in for
a log disk that fills up. Every secret the world uses is listed in `SECRETS`, to be looked for
in every output and file afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.segment import SegmentFaults, SegmentStandin
from segment_sync.standins.server import free_port, serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WEBHOOK_SECRET, WRITE_KEY
from segment_sync_tests.url_passwords import log_rows

WEBHOOK_TOKEN = "pipeline-bearer-token-5f1c9a"
URL_PASSWORD = (
    "PWa271828pipe%40line:PWz314159"  # in outbound/inbound base_url and alerts.ui_base_url
)
SECRETS = [WRITE_KEY, ANTAVO_KEY, ANTAVO_SECRET, WEBHOOK_SECRET, WEBHOOK_TOKEN, URL_PASSWORD]
SECRETS += ["PWa271828", "PWz314159", "pipe@line"]  # either end of the password, and decoded
RUN_ENV = {
    "SEGMENT_WRITE_KEY": WRITE_KEY,
    "ANTAVO_API_KEY": ANTAVO_KEY,
    "ANTAVO_API_SECRET": ANTAVO_SECRET,
}


class KillSwitch:
    """ASGI middleware: SIGKILLs `victim` once the `nth` request under `prefix` has been handled
    by the stand-in, before its answer goes out (the worst moment: the work is done, the client
    never learns it)."""

    def __init__(self, app, prefix: str) -> None:
        self.app, self.prefix = app, prefix
        self._lock = threading.Lock()
        self.arm(None, 0)

    def arm(self, victim: subprocess.Popen | None, nth: int) -> None:
        with self._lock:
            self.victim, self.nth, self.seen, self.fired = victim, nth, 0, False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        with self._lock:
            self.seen += self.victim is not None
            fire = self.victim is not None and self.seen == self.nth
        if not fire:
            return await self.app(scope, receive, send)

        async def kill_then_send(message) -> None:
            if message["type"] == "http.response.start" and not self.fired:
                os.kill(self.victim.pid, signal.SIGKILL)  # dies before it reads the answer
                self.fired = True
            await send(message)

        return await self.app(scope, receive, kill_then_send)


@dataclass(repr=False)
class World:
    root: Path
    segment: SegmentStandin
    segment_url: str
    segment_kill: KillSwitch
    antavo: AntavoStandin
    antavo_url: str
    antavo_kill: KillSwitch
    receiver_url: str
    receiver_log: Path
    buffer_url: str
    disk: Path | None  # a 4 MiB tmpfs, None where mounting is denied

    def __repr__(self) -> str:
        return f"World({self.root})"

    def reset(self) -> None:
        """Stand-ins empty, without faults, switches disarmed."""
        self.segment.reset()
        self.segment.set_faults(error_rate=0.0, throttle_rate=0.0, refuse_marker="", seed=7)
        self.antavo.reset()
        self.antavo.configure(error_rate=0.0, seed=7)
        self.segment_kill.arm(None, 0)
        self.antavo_kill.arm(None, 0)


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://sync:{URL_PASSWORD}@{rest}"


@contextmanager
def pipeline_world(root: Path) -> Iterator[World]:
    """Stand-ins, the receiver process and the tmpfs, for the whole module."""
    segment = SegmentStandin("us", {WRITE_KEY: "us"}, SegmentFaults(seed=7))
    antavo = AntavoStandin(ANTAVO_KEY, ANTAVO_SECRET, stack="test", seed=7)
    segment_kill, antavo_kill = KillSwitch(segment.app, "/v1/"), KillSwitch(antavo.app, "/events")
    buffer_url = f"sqlite:///{root / 'inbound.db'}"
    with ExitStack() as stack:
        segment_url = stack.enter_context(serve_in_thread(segment_kill))
        antavo_url = stack.enter_context(serve_in_thread(antavo_kill))
        receiver_url, receiver_log = stack.enter_context(_receiver(root, buffer_url))
        disk = stack.enter_context(_tmpfs(root / "disk"))
        world = World(
            root, segment, segment_url, segment_kill, antavo, antavo_url, antavo_kill,
            receiver_url, receiver_log, buffer_url, disk,
        )  # fmt: skip
        world.reset()
        yield world


@contextmanager
def _receiver(root: Path, buffer_url: str) -> Iterator[tuple[str, Path]]:
    """`segment-sync serve-webhooks` with a secret and a token; its log goes to a file."""
    settings = root / "receiver.yaml"
    inbound = {"buffer_url": buffer_url, "webhook_token_env": "SEGMENT_WEBHOOK_TOKEN"}
    settings.write_text(yaml.safe_dump({"inbound": inbound, "logs": {"dir": str(root / "rlogs")}}))
    port, log = free_port(), root / "receiver.log"
    env = {**os.environ, "SEGMENT_WEBHOOK_SECRET": WEBHOOK_SECRET}
    env["SEGMENT_WEBHOOK_TOKEN"] = WEBHOOK_TOKEN
    args = [sys.executable, "-m", "segment_sync.cli", "serve-webhooks", "--settings", str(settings)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*args, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the receiver did not start within 60 s"
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def _tmpfs(mount_point: Path) -> Iterator[Path | None]:
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def start_run(settings: Path, direction: str) -> subprocess.Popen:
    """`segment-sync run outbound --stream events` or `run inbound`, its own process."""
    args = ["run", direction, "--settings", str(settings)]
    args += ["--stream", "events"] if direction == "outbound" else []
    return subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", *args],
        env={**os.environ, **RUN_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def leaked_secrets(texts: dict[str, str], places: list[Path]) -> list[str]:
    """Where a secret shows: in these outputs, or any file at or under `places` (Parquet rows
    read by DuckDB, all else as bytes), except settings files (they hold the URLs)."""
    found = [f"{name}: {s}" for name, text in texts.items() for s in SECRETS if s in text]
    for place in places:
        if place.is_dir():
            rows = repr(log_rows(place))
            found += [f"a Parquet log row under {place}: {s}" for s in SECRETS if s in rows]
        files = sorted(p for p in place.rglob("*") if p.is_file()) if place.is_dir() else [place]
        for path in files:
            if path.suffix in (".yaml", ".parquet") or path.name == "filler.bin":
                continue
            content = path.read_bytes()
            found += [f"{path}: {s}" for s in SECRETS if s.encode() in content]
    return found
