"""Scaling bench: outbound with 1 and 2 Celery workers (4 shards), side by side in one run.

    .venv/bin/python bench/scale.py [--events 100000] [--shards 4] [--repeat 1]

Each round, for 1 and then 2 workers, on the same machine minutes apart:

1. a fresh PostgreSQL database (server: SEGMENT_SYNC_TEST_PG_URL, default the local `test`
   database's server) holds the Dagster instance (deploy/celery/dagster.yaml), the loyalty store
   seeded with N allow-listed events (not timed) and the outbound state;
2. W workers started by deploy/celery/worker.sh (concurrency 1 each), Redis as broker and result
   backend (databases 13 and 14, flushed first);
3. the Segment stand-in as its own process, keeping no messages;
4. timed: one `dagster job execute` process per shard partition, all started at once (what a
   backfill over the shards launches), until the last has ended. Verified: every run succeeded
   and the stand-in accepted exactly N messages with no duplicate messageId.

It reports events/s over that wall clock, the workers' and the stand-in's CPU seconds, and the
2-worker / 1-worker ratio, writes bench/results/scale.json, and exits 1 if a run failed or a
message was missing or doubled. A 2-core machine cannot show the scaling of more machines: see
bench/README.md for what these figures mean.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.json"
if str(ROOT) not in sys.path:  # `python bench/scale.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from processes import Processes, cpu_s, database, wait_for  # noqa: E402  (bench/ on the path)
from scale_inbound import inbound_round  # noqa: E402

from segment_sync.loyalty.records import NewEvent  # noqa: E402
from segment_sync.loyalty.store import LoyaltyStore  # noqa: E402
from segment_sync.standins.server import free_port  # noqa: E402

REDIS = os.environ.get("SEGMENT_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
BROKER_DB, BACKEND_DB = 13, 14
WRITE_KEY = "bench-us-write-key"  # a made-up key the local stand-in accepts; not a secret
RUN_TIMEOUT_S = 900


def task_seconds(worker_log: str) -> list[float]:
    """Durations of the steps a worker executed, from Celery's "succeeded in 1.23s" lines."""
    return [float(m) for m in re.findall(r"succeeded in ([0-9.]+)s", worker_log)]


def standin_stats(port: int) -> dict[str, Any]:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/_standin/stats", timeout=10).json()


def outbound_round(workers: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """N events over `args.shards` shard runs on `workers` Celery workers, timed end to end."""
    import redis

    for db in (BROKER_DB, BACKEND_DB):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
    run_dir = workdir / f"outbound-{workers}w-{time.monotonic_ns()}"
    (run_dir / "home").mkdir(parents=True)
    (run_dir / "home" / "dagster.yaml").write_text(
        (ROOT / "deploy" / "celery" / "dagster.yaml").read_text()
    )
    port = free_port()
    with database() as pg:
        settings = run_dir / "segment_sync.yaml"
        settings.write_text(yaml.safe_dump(_settings(pg, port, run_dir, args.shards)))
        LoyaltyStore(pg).append_events(
            [NewEvent(f"c-{i % 9973}", "point_add", {"n": i}) for i in range(args.events)]
        )
        env = _env(pg, settings, run_dir)
        with Processes(run_dir, env) as procs:
            standin = procs.start("standin", _standin_cmd(port))
            wait_for(lambda: _healthy(port), "the Segment stand-in")
            names = [f"worker-{k}" for k in range(workers)]
            pids = [procs.start(n, [str(ROOT / "deploy/celery/worker.sh"), n]).pid for n in names]
            wait_for(lambda: all(" ready." in procs.log(n) for n in names), "the workers")
            cpu_before = [cpu_s(p) for p in pids], cpu_s(standin.pid)
            started = time.perf_counter()
            runs = [procs.start(f"run-shard-{k}", _run_cmd(k)) for k in range(args.shards)]
            codes = [r.wait(RUN_TIMEOUT_S) for r in runs]
            wall_s = time.perf_counter() - started
            worker_cpu = sum(cpu_s(p) for p in pids) - sum(cpu_before[0])
            standin_cpu = cpu_s(standin.pid) - cpu_before[1]
            stats = standin_stats(port)
            busy_s = [sum(task_seconds(procs.log(n))) for n in names]
    verified = (
        codes == [0] * args.shards
        and stats["messages_accepted"] == args.events
        and stats["duplicate_message_ids"] == 0
    )
    return {
        "workers": workers,
        "events": args.events,
        "wall_s": round(wall_s, 2),
        "events_per_s": round(args.events / wall_s),
        "worker_busy_s": [round(b, 2) for b in busy_s],
        "worker_events_per_s": round(args.events / max(busy_s)),
        "worker_cpu_s": round(worker_cpu, 2),
        "standin_cpu_s": round(standin_cpu, 2),
        "run_exit_codes": codes,
        "accepted": stats["messages_accepted"],
        "duplicates": stats["duplicate_message_ids"],
        "verified": verified,
    }


def _settings(pg: str, port: int, run_dir: Path, shards: int) -> dict[str, Any]:
    return {
        "loyalty_store": {"url": pg},
        "outbound": {
            "base_url": f"http://127.0.0.1:{port}",
            "event_sync": ["point_add"],
            "state_url": pg,
            "shards": shards,
            "follow_s": 0,
        },
        "logs": {"dir": str(run_dir / "logs")},
        "executor": {"kind": "celery"},
    }


def _env(pg: str, settings: Path, run_dir: Path) -> dict[str, str]:
    return os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_HOME": str(run_dir / "home"),
        "DAGSTER_PG_URL": pg.replace("postgresql://", "postgresql+psycopg2://", 1),
        "DAGSTER_CELERY_BROKER_URL": f"{REDIS}/{BROKER_DB}",
        "DAGSTER_CELERY_BACKEND_URL": f"{REDIS}/{BACKEND_DB}",
        "SEGMENT_SYNC_SETTINGS": str(settings),
        "SEGMENT_WRITE_KEY": WRITE_KEY,
    }


def _standin_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "segment_sync.standins.segment", "--port", str(port),
            "--write-key-env", "SEGMENT_WRITE_KEY=us", "--no-keep-messages"]  # fmt: skip


def _run_cmd(shard: int) -> list[str]:
    tags = json.dumps({"dagster/partition": f"shard-{shard}"})
    return [str(Path(sys.executable).parent / "dagster"), "job", "execute",
            "-m", "segment_sync.definitions", "-a", "defs", "-j", "outbound_sync_job",
            "--tags", tags]  # fmt: skip


def _healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def table(rounds: list[dict[str, Any]], ratio: float) -> str:
    lines = [
        "| workers | events | wall s | events/s | busiest worker's steps s | events/s over it |"
        " worker CPU s | stand-in CPU s | verified |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rounds:
        lines.append(
            f"| {r['workers']} | {r['events']:,} | {r['wall_s']} | {r['events_per_s']:,} | "
            f"{max(r['worker_busy_s'])} | {r['worker_events_per_s']:,} | "
            f"{r['worker_cpu_s']} | {r['standin_cpu_s']} | {r['verified']} |"
        )
    lines.append(f"\nratio 2 workers / 1 worker (median events/s, wall clock): {ratio:.2f}x")
    return "\n".join(lines)


def inbound_table(rounds: list[dict[str, Any]]) -> str:
    lines = [
        "| limit/min | processes | events | wall s | events/s | limit's ceiling ev/s | requests |"
        " 429s | stand-in CPU s | verified |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rounds:
        lines.append(
            f"| {r['per_minute']:,} | {r['processes']} | {r['events']:,} | {r['wall_s']} | "
            f"{r['events_per_s']:,} | {r['ceiling_events_per_s']:,} | {r['requests']} | "
            f"{r['rate_limited']} | {r['standin_cpu_s']} | {r['verified']} |"
        )
    return "\n".join(lines)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (1 worker, 2 workers)")
    parser.add_argument("--inbound-events", type=int, default=20_000, help="0 skips inbound")
    parser.add_argument(
        "--inbound-limits", default="1500,1000000", help="Antavo limits per minute to run at"
    )
    args = parser.parse_args(argv)
    rounds, inbound = [], []
    with tempfile.TemporaryDirectory(prefix="segment-sync-scale-") as tmp:
        for _ in range(args.repeat):
            for workers in (1, 2):
                rounds.append(outbound_round(workers, args, Path(tmp)))
                print(json.dumps(rounds[-1]), flush=True)
        for per_minute in [int(x) for x in args.inbound_limits.split(",")] * bool(
            args.inbound_events
        ):
            for processes in (1, 2):
                url = f"{REDIS}/{BACKEND_DB + 1}"
                inbound.append(
                    inbound_round(processes, per_minute, args.inbound_events, url, Path(tmp))
                )
                print(json.dumps(inbound[-1]), flush=True)
    rate = {w: median([r["events_per_s"] for r in rounds if r["workers"] == w]) for w in (1, 2)}
    ratio = rate[2] / rate[1]
    print(table(rounds, ratio))
    if inbound:
        print()
        print(inbound_table(inbound))
    RESULTS.parent.mkdir(exist_ok=True)
    load = os.getloadavg()
    RESULTS.write_text(
        json.dumps(
            {
                "outbound": rounds,
                "ratio": ratio,
                "inbound": inbound,
                "cpus": os.cpu_count(),
                "load": load,
            }
        )  # fmt: skip
    )
    return 0 if all(r["verified"] for r in rounds + inbound) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
