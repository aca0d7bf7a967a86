"""`segment-sync demo run`: the whole thing on embedded defaults, on this machine only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from segment_sync import factory
from segment_sync.demo_guard import check_ports_free, demo_guard
from segment_sync.loyalty.demo import seed
from segment_sync.settings import DEFAULT_SETTINGS_PATH, SETTINGS_ENV_VAR, load_settings

EXAMPLE_SETTINGS = Path("data/segment_sync.example.yaml")
DEMO_SECRETS = {
    "SEGMENT_WRITE_KEY": "demo-us-write-key",
    "ANTAVO_API_KEY": "demo-antavo-key",
    "ANTAVO_API_SECRET": "demo-antavo-secret",
    "SEGMENT_WEBHOOK_SECRET": "demo-webhook-secret",
}
SEGMENT_STANDIN_PORT = 8701
ANTAVO_STANDIN_PORT = 8702
RECEIVER_PORT = 8703
DAGSTER_PORT = 3000


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy in {timeout_s}s")


def run_demo(events: int, profiles: int, start_dagster: bool = True) -> int:
    """Stand-ins up, settings in place, data seeded, then `dagster dev` (Ctrl-C stops everything).

    DemoRefused, before anything is written or started, when a demo already runs.
    """
    settings_file = Path(os.environ.get(SETTINGS_ENV_VAR) or DEFAULT_SETTINGS_PATH)
    with demo_guard(settings_file.parent):
        ports = {
            SEGMENT_STANDIN_PORT: "Segment stand-in",
            ANTAVO_STANDIN_PORT: "Antavo stand-in",
            RECEIVER_PORT: "webhook receiver",
        }
        if start_dagster:
            ports[DAGSTER_PORT] = "Dagster UI"
        check_ports_free(ports)
        return _run(settings_file, events, profiles, start_dagster)


def _stop_on_sigterm() -> None:
    """`kill PID` stops the demo like Ctrl-C does: children stopped, lock released."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _run(settings_file: Path, events: int, profiles: int, start_dagster: bool) -> int:
    """The demo itself, under the guard."""
    _stop_on_sigterm()
    if not settings_file.exists():
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE_SETTINGS, settings_file)
        print(f"wrote {settings_file} from {EXAMPLE_SETTINGS}")
    env = {**os.environ, SETTINGS_ENV_VAR: str(settings_file)}
    for name, value in DEMO_SECRETS.items():
        env.setdefault(name, value)
    os.environ.update({k: env[k] for k in DEMO_SECRETS})
    settings = load_settings(settings_file)

    inbound = settings.inbound
    services = {
        "Segment stand-in (LOCAL, not Segment)": (
            SEGMENT_STANDIN_PORT,
            ["-m", "segment_sync.standins.segment", "--port", str(SEGMENT_STANDIN_PORT),
             "--region", settings.outbound.region, "--no-keep-messages",
             "--write-key-env", f"{settings.outbound.write_key_env}={settings.outbound.region}"],
        ),
        "Antavo stand-in (LOCAL, not Antavo)": (
            ANTAVO_STANDIN_PORT,
            ["-m", "segment_sync.standins.antavo", "--port", str(ANTAVO_STANDIN_PORT),
             "--stack", inbound.stack, "--api-key-env", inbound.api_key_env,
             "--api-secret-env", inbound.api_secret_env,
             "--loyalty-store", settings.loyalty_store.url.reveal()],
        ),
        "Segment webhook receiver (POST /segment)": (
            RECEIVER_PORT,
            ["-m", "segment_sync.cli", "serve-webhooks", "--port", str(RECEIVER_PORT),
             "--settings", str(settings_file)],
        ),
    }  # fmt: skip
    children: list[subprocess.Popen] = []
    try:
        for label, (port, args) in services.items():
            child = subprocess.Popen([sys.executable, *args], env=env, start_new_session=True)
            children.append(child)
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", child)
            print(f"{label} on http://127.0.0.1:{port}")

        store = factory.loyalty_store(settings)
        seed(store, events, profiles, customer_count=max(10, events // 20))
        print(
            f"seeded {events} loyalty events and {profiles} profile changes into {settings.loyalty_store.url}"
        )
        if not start_dagster:
            return 0
        dagster_env = {**env, "DAGSTER_HOME": str(Path.cwd())}
        dagster = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(DAGSTER_PORT)],
            env=dagster_env,
            start_new_session=True,
        )
        children.append(dagster)
        print("Dagster UI on http://127.0.0.1:3000 (sensors run by default); Ctrl-C stops the demo")
        return dagster.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


def _stop(children: list[subprocess.Popen]) -> None:
    """SIGINT to each child's process group (Ctrl-C reaches only ours), SIGKILL after 15 s.

    Each child leads its own group, so `dagster dev`'s webserver, daemon and run workers stop
    with it instead of outliving a demo stopped by `kill PID`.
    """
    for child in reversed(children):
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
