"""Follow runs under `dagster dev`: runs per idle and per busy hour, freshness while busy, and
the first delivery after an idle period (the cold path: a sensor tick plus a run launch).

    .venv/bin/python bench/follow_runs.py [--baseline main] [--follow-s 30] [--idle-s 180]

Two code versions side by side in ONE run, each on a fresh `dagster dev` (webserver, daemon,
the repo's dagster.yaml, sensors on) with its own store, progress and logs, against one Segment
stand-in process: this checkout ("after") and `--baseline`, a git revision exported to a
temporary directory ("before", default `main`). For each, in order:

1. busy: events committed at `--rate` per second for `--busy-s`; the latency of each (commit
   returned -> the stand-in accepted it) and the outbound runs created meanwhile;
2. idle: nothing committed for `--idle-s`, counted from two follow windows and a sensor
   interval after the busy events drained (the run following them and a successor it may have
   been due have ended); the outbound runs created meanwhile;
3. cold after idle: one event committed; its latency is a sensor tick plus a run launch when
   no run follows the stream any more.

Runs per hour are extrapolated linearly from the windows (runs / window * 3600). A follow run
lasts `outbound.follow_s`; the shorter `--follow-s` here (production default 180) makes an idle
chain show within minutes: with follow_s F, a chain requests a successor every F - min(45, F/2)
seconds, i.e. 3600 / (F - min(45, F/2)) runs an hour (27 at F = 180, 240 at F = 30).

Targets for "after": 0 runs per idle hour, busy p95 < 1 s, nothing lost; exits 1 on a MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from freshness import DagsterDev, accepted_at, commit_one, write_settings  # noqa: E402
from outbound import BENCH_WRITE_KEY, WRITE_KEY_ENV, Standin  # noqa: E402

from segment_sync.loyalty.store import LoyaltyStore  # noqa: E402

P95_TARGET_S = 1.0
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status } } }
}"""


def runs_created(port: int, after: float, before: float) -> int:
    """Outbound runs `dagster dev` created in [after, before) (unix seconds)."""
    filter_ = {"pipelineName": "outbound_sync_job", "createdAfter": after, "createdBefore": before}
    body = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": RUNS, "variables": {"filter": filter_}},
        timeout=60,
    ).json()
    return len(body["data"]["runsOrError"]["results"])


def wait_accepted(standin: Standin, ids: set[int], timeout_s: float) -> dict[int, float]:
    """When the stand-in accepted each of `ids` (those it accepted within the timeout)."""
    deadline = time.monotonic() + timeout_s
    arrived = accepted_at(standin)
    while ids - set(arrived) and time.monotonic() < deadline:
        time.sleep(0.3)
        arrived = accepted_at(standin)
    return arrived


def measure(standin: Standin, workdir: Path, name: str, code: Path, args) -> dict[str, Any]:
    run_dir = workdir / name
    run_dir.mkdir()
    standin.reset()
    settings = write_settings(run_dir, standin.url, args.follow_s, args.poll_ms)
    store = LoyaltyStore(f"sqlite:///{run_dir / 'loyalty.db'}")
    dev = DagsterDev(run_dir, settings, code_root=code)
    try:
        first_id, first_at = commit_one(store, 0)  # the first tick after start-up
        first = wait_accepted(standin, {first_id}, 300).get(first_id)
        if first is None:
            raise RuntimeError(f"{name}: the first event never arrived; see {dev.log_path}")
        print(f"  {name}: first event {first - first_at:.1f} s after its commit", flush=True)

        busy_from, commits = time.time(), {}
        start, interval = time.monotonic(), 1 / args.rate
        for n in range(1, int(args.rate * args.busy_s) + 1):
            pause = start + n * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            row_id, at = commit_one(store, n)
            commits[row_id] = at
        busy_to = time.time()
        arrived = wait_accepted(standin, set(commits), args.drain_s)
        busy_runs = runs_created(dev.port, busy_from, busy_to)

        time.sleep(2 * args.follow_s + 15)  # a run still following the busy rows, its successor
        idle_from = time.time()
        time.sleep(args.idle_s)
        idle_to = time.time()
        idle_runs = runs_created(dev.port, idle_from, idle_to)

        cold_id, cold_at = commit_one(store, 10**6)
        cold = wait_accepted(standin, {cold_id}, 300).get(cold_id)
    finally:
        dev.stop()
        store.close()
    latencies = np.array([arrived[i] - t for i, t in commits.items() if i in arrived])
    result = {
        "name": name,
        "code": str(code),
        "busy_s": busy_to - busy_from,
        "busy_runs": busy_runs,
        "runs_per_busy_hour": busy_runs / (busy_to - busy_from) * 3600,
        "idle_s": idle_to - idle_from,
        "idle_runs": idle_runs,
        "runs_per_idle_hour": idle_runs / (idle_to - idle_from) * 3600,
        "committed": len(commits),
        "lost": len(commits) - len(latencies),
        "p50_s": float(np.percentile(latencies, 50)),
        "p95_s": float(np.percentile(latencies, 95)),
        "cold_after_idle_s": None if cold is None else cold - cold_at,
    }
    print(
        f"  {name}: busy p95 {result['p95_s']:.2f} s, {busy_runs} runs in "
        f"{result['busy_s']:.0f} s; idle {idle_runs} runs in {result['idle_s']:.0f} s; "
        f"cold after idle {result['cold_after_idle_s']} s",
        flush=True,
    )
    return result


def export(rev: str, into: Path) -> Path:
    """The segment_sync package of git revision `rev`, exported under `into`."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "segment_sync"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default="main", help="git revision measured as 'before'")
    p.add_argument("--follow-s", type=float, default=30, help="outbound.follow_s")
    p.add_argument("--poll-ms", type=int, default=250, help="outbound.poll_interval_ms")
    p.add_argument("--rate", type=float, default=20, help="events per second while busy")
    p.add_argument("--busy-s", type=float, default=90, help="how long events are committed")
    p.add_argument("--idle-s", type=float, default=180, help="how long nothing is committed")
    p.add_argument("--drain-s", type=float, default=60, help="wait for stragglers this long")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "follow_runs.json")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-follow-runs-"))
    os.environ[WRITE_KEY_ENV] = BENCH_WRITE_KEY
    load_before = os.getloadavg()
    standin = Standin(workdir)
    try:
        before = measure(standin, workdir, "before", export(args.baseline, workdir / "base"), args)
        after = measure(standin, workdir, "after", ROOT, args)
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    print()
    print(f"load average before {load_before}, after {load_after} (2 cores)")
    print(f"follow_s {args.follow_s:g}, busy {args.rate:g} events/s for {args.busy_s:g} s, "
          f"idle {args.idle_s:g} s")  # fmt: skip
    header = f"{'code':<22} {'p50':>6} {'p95':>6} {'lost':>5} {'runs/busy h':>12} "
    print(header + f"{'runs/idle h':>12} {'cold after idle':>16}")
    for r, label in ((before, f"before ({args.baseline})"), (after, "after (this tree)")):
        cold = "never" if r["cold_after_idle_s"] is None else f"{r['cold_after_idle_s']:.1f} s"
        print(
            f"{label:<22} {r['p50_s']:>5.2f}s {r['p95_s']:>5.2f}s {r['lost']:>5} "
            f"{r['runs_per_busy_hour']:>12.0f} {r['runs_per_idle_hour']:>12.0f} {cold:>16}"
        )
    met = (
        after["idle_runs"] == 0
        and after["lost"] == 0
        and after["p95_s"] < P95_TARGET_S
        and after["cold_after_idle_s"] is not None
    )
    print(f"target after: 0 runs per idle hour, p95 < {P95_TARGET_S:g} s, nothing lost: "
          f"{'OK' if met else 'MISSED'}")  # fmt: skip
    command = " ".join([os.path.relpath(sys.executable, ROOT), "bench/follow_runs.py", *argv])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "command": command,
                "load_before": load_before,
                "load_after": load_after,
                "before": before,
                "after": after,
                "met": met,
            },
            indent=2,
        )  # fmt: skip
    )
    print(f"command: {command}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
