"""Where one ingest's time and CPU go, stage by stage (a diagnostic beside bench/ingest.py).

    .venv/bin/python bench/ingest_stages.py [--events 20000] [--max-in-flight N]

Runs `InboundIngest.run` in this process over a fresh SQLite buffer, against the Antavo stand-in
(no rate limit), with each stage wrapped by a timer: wall time per call (median, p90, count) and
the thread's CPU time per event. The wrappers cost a little CPU of their own; compare stages
within a run, not against bench/ingest.py's figures. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import inbound  # noqa: E402  (Service, fill_buffer, child_ingest)

_lock = threading.Lock()
_wall: dict[str, list[float]] = defaultdict(list)
_cpu: dict[str, float] = defaultdict(float)


def _timed(name: str, fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            with _lock:
                _wall[name].append(wall * 1e3)
                _cpu[name] += cpu

    return wrapper


def _timed_async(name: str, fn: Any) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _wall[name].append((time.perf_counter() - wall) * 1e3)

    return wrapper


def instrument() -> None:
    """Wrap the ingest's stages (thread stages get CPU time too; coroutines wall time only)."""
    from segment_sync.antavo.client import AntavoClient
    from segment_sync.inbound.ingest import InboundIngest
    from segment_sync.logs import layout, store

    InboundIngest._claim = _timed("claim (thread)", InboundIngest._claim)
    InboundIngest._log_all = _timed("log write (thread)", InboundIngest._log_all)
    InboundIngest._mark_all = _timed("marks (thread)", InboundIngest._mark_all)
    store.LogWriter._write_batch = _timed("  a table's files", store.LogWriter._write_batch)
    store.to_arrow = _timed("    rows to Arrow", store.to_arrow)
    layout.pq.write_table = _timed("    Parquet encode+write", layout.pq.write_table)
    layout.fsync = _timed("    fsync (file or dir)", layout.fsync)
    AntavoClient.send_events = _timed_async("send (request)", AntavoClient.send_events)
    InboundIngest._record_sent = _timed_async("record (log+mark wait)", InboundIngest._record_sent)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--max-in-flight", type=int)
    args = p.parse_args(argv)
    os.environ.update(inbound.bench_env())
    instrument()
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-bench-stages-"))
    antavo = inbound.Service(
        "antavo", ["segment_sync.standins.antavo", "--stack", inbound.STACK], workdir
    )
    try:
        buffer_url = f"sqlite:///{workdir / 'inbound.db'}"
        inbound.fill_buffer(buffer_url, args.events, "stages")
        cfg: dict[str, Any] = {
            "antavo_url": antavo.url,
            "buffer_url": buffer_url,
            "logs_dir": str(workdir / "logs"),
            "rate_limit_per_minute": inbound.UNLIMITED_PER_MINUTE,
            "run_id": "bench-stages",
        }
        if args.max_in_flight:
            cfg["max_in_flight"] = args.max_in_flight
        load = os.getloadavg()[0]
        loop_cpu = time.thread_time()
        r = inbound.child_ingest(cfg)
        loop_cpu = time.thread_time() - loop_cpu
    finally:
        antavo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    n = args.events
    print(
        f"{n:,} events, load average {load:.2f} -> {os.getloadavg()[0]:.2f}: "
        f"{n / r['elapsed_s']:,.0f} ev/s, {r['run_cpu_s'] / n * 1e6:.1f} µs CPU/event "
        f"({r['run_cpu_s'] / r['elapsed_s']:.2f} of a core), event-loop thread "
        f"{loop_cpu / n * 1e6:.1f} µs/event; done {r['counts']['done']:,}"
    )
    print(f"{'stage':28}{'calls':>7}{'median ms':>11}{'p90 ms':>9}{'CPU µs/ev':>11}")
    for name, walls in _wall.items():
        walls.sort()
        cpu = f"{_cpu[name] / n * 1e6:.1f}" if name in _cpu else "-"
        p90 = walls[int(len(walls) * 0.9)]
        print(f"{name:28}{len(walls):>7}{statistics.median(walls):>11.2f}{p90:>9.2f}{cpu:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
