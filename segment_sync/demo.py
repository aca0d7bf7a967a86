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
from segment_sync.defs.assets import EXPANDED_LINEAGE_PATH
from segment_sync.demo_env import (
    DemoExports,
    demo_secrets_env,
    forget_exports,
    record_exports,
    settings_file_in_use,
)
from segment_sync.demo_guard import check_ports_free, demo_guard
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import SETTINGS_ENV_VAR, load_settings

EXAMPLE_SETTINGS = Path("data/segment_sync.example.yaml")
SEGMENT_STANDIN_PORT = 8701
ANTAVO_STANDIN_PORT = 8702
RECEIVER_PORT = 8703
DAGSTER_PORT = 3000
DAGSTER_UI = f"http://127.0.0.1:{DAGSTER_PORT}"


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
    settings_file = settings_file_in_use()
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
    secrets, standin_secrets, own_secrets = demo_secrets_env(dict(os.environ))
    env = {**os.environ, SETTINGS_ENV_VAR: str(settings_file), **secrets}
    os.environ.update(secrets)
    settings = load_settings(settings_file)
    dagster_home = str(Path.cwd()) if start_dagster else None
    exports = DemoExports(
        settings_file=str(settings_file.resolve()),
        segment_standin=f"http://127.0.0.1:{SEGMENT_STANDIN_PORT}",
        antavo_standin=f"http://127.0.0.1:{ANTAVO_STANDIN_PORT}",
        dagster_home=dagster_home,
        standin_secrets=standin_secrets,
        own_secrets=own_secrets,
    )

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
    children: dict[str, subprocess.Popen] = {}
    record_exports(settings_file.parent, exports)
    try:
        for label, (port, args) in services.items():
            child = subprocess.Popen([sys.executable, *args], env=env, start_new_session=True)
            children[label] = child
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", child)
            print(f"{label} on http://127.0.0.1:{port}")

        store = factory.loyalty_store(settings)
        _seed_an_empty_store(store, events, profiles, shown_as=settings.loyalty_store.url)
        print('another shell gets the demo\'s environment: eval "$(segment-sync demo env)"')
        if not start_dagster:
            print("stand-ins running without Dagster; Ctrl-C stops the demo")
            return _until_one_exits(children)
        dagster_env = {**env, "DAGSTER_HOME": dagster_home}
        dagster = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(DAGSTER_PORT)],
            env=dagster_env,
            start_new_session=True,
        )
        children["dagster dev"] = dagster
        print(f"Dagster UI on {DAGSTER_UI} (sensors run by default); Ctrl-C stops the demo")
        print(f"lineage, every group expanded: {DAGSTER_UI}{EXPANDED_LINEAGE_PATH}")
        return dagster.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(list(children.values()))
        forget_exports(settings_file.parent)


def _seed_an_empty_store(store: LoyaltyStore, events: int, profiles: int, shown_as: object) -> None:
    """Seed the demo's rows into an empty store; a store holding rows is left as it is.

    `shown_as`: the store's URL as it may be printed (loyalty_store.url, its password masked).
    """
    try:
        held = store.row_count(Stream.EVENTS), store.row_count(Stream.PROFILES)
        if any(held):
            print(
                f"the store already holds {held[0]} loyalty events and {held[1]} profile "
                "changes: not seeding; `segment-sync demo seed` adds more"
            )
            return
        seed(store, events, profiles, customer_count=max(10, events // 20))
        print(f"seeded {events} loyalty events and {profiles} profile changes into {shown_as}")
    finally:
        store.close()


def _until_one_exits(children: dict[str, subprocess.Popen]) -> int:
    """Wait while every child runs (Ctrl-C or `kill PID` ends the wait); 1 if one exited."""
    while True:
        for label, child in children.items():
            if child.poll() is not None:
                print(f"{label} exited with code {child.returncode}; stopping the demo")
                return 1
        time.sleep(0.5)


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
