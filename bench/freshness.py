"""Freshness: how long a committed loyalty event takes to reach Segment under `dagster dev`.

    .venv/bin/python bench/freshness.py [--rate 20] [--seconds 90] [--follow-s 60]

Both designs, side by side in ONE run, each on a fresh `dagster dev` (webserver and daemon, the
repo's dagster.yaml, sensors on) with its own loyalty store, progress and logs, against one
Segment stand-in process:

- follow: sensor runs follow the stream (`outbound.follow_s`, polling every
  `outbound.poll_interval_ms`) and a new run starts when one ends;
- one pass: `outbound.follow_s: 0`, the old design: each sensor tick starts a run that sends
  what is pending and exits.

For each: one event is committed and awaited first (the cold start: the first tick and run
launch, reported apart), then events are committed at a steady `--rate` for `--seconds`. The
latency of an event is from the moment its commit returned to the moment the stand-in accepted
it (the stand-in answers 2xx right after). Reported: p50 / p95 / max, and events lost (not
accepted within `--drain-s` of the last commit). `--follow-s` is shorter than the window by
default so that the follow figures include a hand-over from one run to the next.

Target: follow p95 <= 5 s (goal 2 s), nothing lost; exits 1 on a MISS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from outbound import BENCH_WRITE_KEY, WRITE_KEY_ENV, Standin  # noqa: E402  (bench/ on the path)

from segment_sync.loyalty.records import NewEvent  # noqa: E402
from segment_sync.loyalty.store import LoyaltyStore  # noqa: E402
from segment_sync.standins.server import free_port  # noqa: E402

P95_TARGET_S, P95_GOAL_S = 5.0, 2.0


def dagster_home(workdir: Path) -> Path:
    """A DAGSTER_HOME with the repo's dagster.yaml, its storage moved under workdir."""
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    for section in ("storage", "local_artifact_storage", "compute_logs"):
        node = config[section]
        node = node.get("sqlite", node.get("config", node))
        node["base_dir"] = str(workdir / "dagster" / section)
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


class DagsterDev:
    """`dagster dev` on a free loopback port; stopped with SIGTERM to its process group."""

    def __init__(self, workdir: Path, settings: Path, code_root: Path = ROOT) -> None:
        """`code_root`: the checkout whose segment_sync the code location imports."""
        self.port = free_port()
        shutil.copy(ROOT / "workspace.yaml", workdir / "workspace.yaml")
        env = os.environ | {
            "DAGSTER_HOME": str(dagster_home(workdir)),
            "SEGMENT_SYNC_SETTINGS": str(settings),
            WRITE_KEY_ENV: BENCH_WRITE_KEY,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(code_root), os.environ.get("PYTHONPATH")])
            ),
        }
        self.log_path = workdir / "dagster_dev.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(self.port),
             "-w", str(workdir / "workspace.yaml")],
            cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/server_info", timeout=2).is_success:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not start; see {self.log_path}")
            time.sleep(0.5)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()


def write_settings(run_dir: Path, endpoint: str, follow_s: float, poll_ms: int) -> Path:
    settings = {
        "loyalty_store": {"url": f"sqlite:///{run_dir / 'loyalty.db'}"},
        "outbound": {
            "base_url": endpoint,
            "event_sync": ["point_add"],
            "customer_fields_sync": ["email"],
            "state_url": f"sqlite:///{run_dir / 'state.db'}",
            "follow_s": follow_s,
            "poll_interval_ms": poll_ms,
        },
        "inbound": {"buffer_url": f"sqlite:///{run_dir / 'inbound.db'}"},
        "logs": {"dir": str(run_dir / "logs")},
    }
    path = run_dir / "segment_sync.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def accepted_at(standin: Standin) -> dict[int, float]:
    """Source row id -> when the stand-in first accepted its message (unix seconds)."""
    body = standin.http.get("/_standin/arrivals").json()
    first: dict[int, float] = {}
    for message_id, at in zip(body["message_ids"], body["accepted_at"], strict=True):
        first.setdefault(int(message_id.split("-")[2]), at)  # ss-evt-<row id>-<ms>
    return first


def commit_one(store: LoyaltyStore, n: int) -> tuple[int, float]:
    [row_id] = store.append_events([NewEvent(f"c-{n % 500}", "point_add", {"points": n})])
    return row_id, time.time()


def measure(
    standin: Standin, workdir: Path, name: str, follow_s: float, args, code_root: Path = ROOT
) -> dict[str, Any]:
    run_dir = workdir / name
    run_dir.mkdir()
    standin.reset()
    settings = write_settings(run_dir, standin.url, follow_s, args.poll_ms)
    store = LoyaltyStore(f"sqlite:///{run_dir / 'loyalty.db'}")
    dev = DagsterDev(run_dir, settings, code_root)
    try:
        first_id, first_at = commit_one(store, 0)
        deadline = time.monotonic() + 300
        while first_id not in accepted_at(standin):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the first event never arrived; see {dev.log_path}")
            time.sleep(0.2)
        cold_s = accepted_at(standin)[first_id] - first_at
        print(f"  {name}: cold start {cold_s:.1f} s; committing {args.rate}/s for {args.seconds} s")
        commits: dict[int, float] = {}
        start, interval = time.monotonic(), 1 / args.rate
        for n in range(1, int(args.rate * args.seconds) + 1):
            pause = start + n * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            row_id, at = commit_one(store, n)
            commits[row_id] = at
        drain_until = time.monotonic() + args.drain_s
        arrived = accepted_at(standin)
        while set(commits) - set(arrived) and time.monotonic() < drain_until:
            time.sleep(0.5)
            arrived = accepted_at(standin)
    finally:
        dev.stop()
        store.close()
    latencies = np.array([arrived[i] - t for i, t in commits.items() if i in arrived])
    lost = len(commits) - len(latencies)
    result = {
        "name": name,
        "follow_s": follow_s,
        "committed": len(commits),
        "lost": lost,
        "cold_start_s": cold_s,
        "p50_s": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "p95_s": float(np.percentile(latencies, 95)) if len(latencies) else None,
        "max_s": float(latencies.max()) if len(latencies) else None,
    }
    print(
        f"  {name}: p50 {result['p50_s']:.2f} s  p95 {result['p95_s']:.2f} s  "
        f"max {result['max_s']:.2f} s  lost {lost} of {len(commits)}",
        flush=True,
    )
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20, help="events committed per second")
    p.add_argument("--seconds", type=float, default=90, help="how long events are committed")
    p.add_argument("--follow-s", type=float, default=60, help="outbound.follow_s of the follow run")
    p.add_argument("--poll-ms", type=int, default=250, help="outbound.poll_interval_ms")
    p.add_argument("--drain-s", type=float, default=60, help="wait for stragglers this long")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "freshness.json")
    p.add_argument("--keep-data", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--baseline",
        help="a git revision: measure the follow design of its code too, before this tree's "
        "(instead of the one-pass design)",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-freshness-"))
    os.environ[WRITE_KEY_ENV] = BENCH_WRITE_KEY
    standin = Standin(workdir)
    try:
        if args.baseline:  # before (the baseline's code) and after, both following
            from follow_runs import export

            base = export(args.baseline, workdir / "base")
            one_pass = measure(standin, workdir, "baseline", args.follow_s, args, base)
        follow = measure(standin, workdir, "follow", args.follow_s, args)
        if not args.baseline:
            one_pass = measure(standin, workdir, "one-pass", 0, args)
    finally:
        standin.stop()
        if args.keep_data:
            print(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    met = follow["lost"] == 0 and one_pass["lost"] == 0 and follow["p95_s"] <= P95_TARGET_S
    print()
    print(f"load average {os.getloadavg()} (2 cores)")
    print(f"{'design':<34} {'p50':>7} {'p95':>7} {'max':>7} {'lost':>6}  cold start")
    other = (
        f"before: {args.baseline} (follow_s {args.follow_s:g})"
        if args.baseline
        else "one pass per sensor tick"
    )
    for r, label in ((follow, f"follow (follow_s {args.follow_s:g})"), (one_pass, other)):
        print(
            f"{label:<34} {r['p50_s']:>6.2f}s {r['p95_s']:>6.2f}s {r['max_s']:>6.2f}s "
            f"{r['lost']:>6}  {r['cold_start_s']:.1f} s"
        )
    verdict = "OK" if met else "MISSED"
    goal = "met" if follow["p95_s"] <= P95_GOAL_S else "not met"
    print(
        f"target follow p95 <= {P95_TARGET_S:g} s, nothing lost: {verdict} (goal {P95_GOAL_S:g} s: {goal})"
    )
    command = " ".join([os.path.relpath(sys.executable, ROOT), "bench/freshness.py", *argv])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"command": command, "follow": follow, "one_pass": one_pass, "met": met}, indent=2
        )
    )
    print(f"command: {command}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
