"""`make run` (`segment-sync demo run`) refuses while a demo runs, and touches nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from segment_sync.demo import SEGMENT_STANDIN_PORT
from segment_sync.demo_guard import demo_guard
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
HOLD_GUARD = """
import sys, time
from pathlib import Path
from segment_sync.demo_guard import demo_guard
with demo_guard(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def row_counts(settings_file: Path) -> tuple[int, int]:
    """(loyalty events, profile changes) in the settings' store."""
    store = LoyaltyStore(load_settings(settings_file).loyalty_store.url)
    try:
        return (
            len(store.events_after(0, 10**9, 10**6)),
            len(store.profile_changes_after(0, 10**9, 10**6)),
        )
    finally:
        store.close()


@pytest.fixture
def demo_settings(write_settings) -> Path:
    """A settings file whose store already holds a seeded demo's rows."""
    path = write_settings()
    seed(LoyaltyStore(load_settings(path).loyalty_store.url), 40, 10, customer_count=10)
    return path


@pytest.fixture
def guard_holder(demo_settings: Path) -> Iterator[subprocess.Popen]:
    """A real process holding the demo guard of `demo_settings`' folder, as a running demo does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_GUARD, str(demo_settings.parent)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def run_demo_command(settings_file: Path) -> subprocess.CompletedProcess:
    """`segment-sync demo run --no-dagster` in a real process, as `make run` starts it."""
    env = {**os.environ, "SEGMENT_SYNC_SETTINGS": str(settings_file)}
    return subprocess.run(
        [sys.executable, "-m", "segment_sync.cli", "demo", "run", "--no-dagster"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_demo_refuses_naming_the_running_one_and_seeds_nothing(
    demo_settings: Path, guard_holder: subprocess.Popen
) -> None:
    before = row_counts(demo_settings)
    result = run_demo_command(demo_settings)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: the demo is already running (pid {guard_holder.pid}, http://127.0.0.1:3000); "
        f"stop it with Ctrl-C in its terminal or `kill {guard_holder.pid}` first, then run "
        "`make run` again"
    ]
    assert result.stdout == ""  # no stand-in started, nothing seeded
    assert row_counts(demo_settings) == before == (40, 10)


def test_a_killed_demo_does_not_block_the_next(
    demo_settings: Path, guard_holder: subprocess.Popen
) -> None:
    os.killpg(guard_holder.pid, signal.SIGKILL)
    guard_holder.wait()
    with demo_guard(demo_settings.parent):
        assert (demo_settings.parent / "demo.lock").read_text() == f"{os.getpid()}\n"


def test_a_demo_port_in_use_refuses_before_anything_is_seeded(demo_settings: Path) -> None:
    before = row_counts(demo_settings)
    with socket.socket() as squatter:
        try:
            squatter.bind(("127.0.0.1", SEGMENT_STANDIN_PORT))
            squatter.listen()
        except OSError:
            pass  # something else already listens there: the refusal is the same
        result = run_demo_command(demo_settings)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: port {SEGMENT_STANDIN_PORT} on 127.0.0.1, where the demo ")
    assert f"lsof -i :{SEGMENT_STANDIN_PORT}" in line
    assert result.stdout == ""
    assert row_counts(demo_settings) == before
