"""`make run` (`segment-sync demo run`): one demo at a time (a second refuses and touches
nothing), the store seeded only while empty, and `segment-sync demo env` giving another shell
the running demo's environment. Real demo processes on the demo's ports, so these tests share
one file (pytest-xdist runs a file in one worker)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from segment_sync.demo import ANTAVO_STANDIN_PORT, SEGMENT_STANDIN_PORT
from segment_sync.demo_env import DEMO_SECRETS, RECORD_NAME
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


# ---------------------------------------------------------------------------------------------
# A running demo: seeding, and its environment for another shell
# ---------------------------------------------------------------------------------------------

CLI = f"{shlex.quote(sys.executable)} -m segment_sync.cli"
READY = "stand-ins running without Dagster; Ctrl-C stops the demo"
SAFETY_NET_S = 240  # a demo that never gets ready is killed, and the test fails on its output


def newcomer_checkout(tmp_path: Path, **outbound: object) -> Path:
    """A folder laid out like a checkout: data/segment_sync.yaml naming the demo's stand-ins."""
    data = tmp_path / "data"
    data.mkdir()
    settings = {
        "loyalty_store": {"url": f"sqlite:///{tmp_path}/loyalty.db"},
        "outbound": {"base_url": f"http://127.0.0.1:{SEGMENT_STANDIN_PORT}",
                     "event_sync": ["point_add", "checkout", "purchase"],
                     "state_url": f"sqlite:///{tmp_path}/state.db", **outbound},
        "inbound": {"base_url": f"http://127.0.0.1:{ANTAVO_STANDIN_PORT}",
                    "buffer_url": f"sqlite:///{tmp_path}/inbound.db"},
        "logs": {"dir": str(tmp_path / "logs")},
    }  # fmt: skip
    path = data / "segment_sync.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def fresh_shell_env(**extra: str) -> dict[str, str]:
    """A shell that has none of the demo's variables (as a second terminal has)."""
    gone = {"SEGMENT_SYNC_SETTINGS", "DAGSTER_HOME", *DEMO_SECRETS}
    return {**{k: v for k, v in os.environ.items() if k not in gone}, **extra}


@contextmanager
def running_demo(checkout: Path, **env: str) -> Iterator[list[str]]:
    """`segment-sync demo run --no-dagster --events 40 --profiles 10` in `checkout`, until ready;
    yields its output lines so far, then stops it with SIGTERM as `kill PID` does."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", "demo", "run", "--no-dagster",
         "--events", "40", "--profiles", "10"],
        cwd=checkout, env=fresh_shell_env(**env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    killer = threading.Timer(SAFETY_NET_S, lambda: os.killpg(demo.pid, signal.SIGKILL))
    killer.start()
    lines: list[str] = []
    try:
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip() == READY:
                break
        assert READY in lines, "the demo did not get ready:\n" + "\n".join(lines)
        yield lines
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=60)
        killer.cancel()


def shell(checkout: Path, script: str) -> subprocess.CompletedProcess:
    """`script` in bash in another shell of `checkout` (none of the demo's variables)."""
    return subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=fresh_shell_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_make_run_seeds_an_empty_store_and_leaves_a_store_with_rows_alone(tmp_path: Path) -> None:
    settings = newcomer_checkout(tmp_path)
    with running_demo(tmp_path) as first:
        assert row_counts(settings) == (40, 10)
    assert any(line.startswith("seeded 40 loyalty events and 10 profile changes") for line in first)
    with running_demo(tmp_path) as second:
        assert row_counts(settings) == (40, 10)
    assert (
        "the store already holds 40 loyalty events and 10 profile changes: not seeding; "
        "`segment-sync demo seed` adds more"
    ) in second


def test_demo_env_gives_another_shell_the_running_demos_settings_and_standin_secrets(
    tmp_path: Path,
) -> None:
    newcomer_checkout(tmp_path)
    own_secret = "an-antavo-secret-of-my-own-42"
    with running_demo(tmp_path, ANTAVO_API_SECRET=own_secret):
        printed = shell(tmp_path, f"{CLI} demo env")
        after_eval = shell(
            tmp_path,
            f'eval "$({CLI} demo env)" && {CLI} settings check && '
            f"{CLI} run outbound --dry-run --stream events",
        )
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line[0] != "#")
    assert exports == {
        "SEGMENT_SYNC_SETTINGS": str(tmp_path / "data" / "segment_sync.yaml"),
        "SEGMENT_WRITE_KEY": "demo-us-write-key",
        "ANTAVO_API_KEY": "demo-antavo-key",
        "SEGMENT_WEBHOOK_SECRET": "demo-webhook-secret",
    }
    assert "LOCAL STAND-INS' demo values, not real credentials" in lines[0]
    assert "# ANTAVO_API_SECRET: not printed" in printed.stdout
    assert own_secret not in printed.stdout + printed.stderr
    # The other shell, after eval: outbound is on and a dry run answers.
    assert after_eval.returncode == 0, after_eval.stdout + after_eval.stderr
    assert "outbound           on " in after_eval.stdout
    assert "events (track): ids 1..40" in after_eval.stdout
    assert not (tmp_path / "data" / RECORD_NAME).exists()  # the stopped demo took it away


def test_demo_env_prints_nothing_when_the_settings_send_to_real_segment(tmp_path: Path) -> None:
    newcomer_checkout(tmp_path, base_url=None)  # the real Segment endpoint
    with running_demo(tmp_path):
        result = shell(tmp_path, f"{CLI} demo env")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ") and "sends outbound to https://api.segment.io" in line
    assert "export the real secrets yourself" in line
    assert not any(value in result.stderr for value in DEMO_SECRETS.values())


def test_demo_env_without_a_running_demo_says_how_to_start_one(tmp_path: Path) -> None:
    newcomer_checkout(tmp_path)
    result = shell(tmp_path, f"{CLI} demo env")
    assert result.returncode == 1 and result.stdout == ""
    assert "no demo is running here" in result.stderr and "make run" in result.stderr
