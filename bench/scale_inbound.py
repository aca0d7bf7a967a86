"""The inbound half of bench/scale.py: 1 and 2 ingest processes under the shared rate limiter.

Each round: a fresh PostgreSQL database holds the webhook buffer, filled with N track events
(not timed); the Antavo stand-in runs as its own process, limiting `per_minute` over a 10 s
sliding window; P `segment-sync run inbound` processes start at once with `inbound.rate_limiter:
redis`, and the clock runs until the last has ended. Verified when every process exited 0, the
stand-in registered each event exactly once and answered no 429, and the buffer holds N done.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from inbound import LOYALTY_MAPPING as MAPPING  # the mapping bench/inbound.py ingests with
from processes import Processes, cpu_s, database, wait_for

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.standins.server import free_port

KEY, SECRET = "bench-antavo-key", "bench-antavo-secret"  # made up; the stand-in accepts them
WINDOW_S = 10.0
LIMITER_URL_ENV = "SEGMENT_SYNC_BENCH_LIMITER_URL"


def track_events(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "Points", "userId": f"c-{i % 997}", "messageId": f"{prefix}-{i}",
         "timestamp": "2026-12-04T12:00:00Z", "properties": {"points": i % 50 + 1}}
        for i in range(n)
    ]  # fmt: skip


def inbound_round(
    processes: int, per_minute: int, events: int, redis_url: str, workdir: Path
) -> dict[str, Any]:
    """N buffered events ingested by `processes` runs sharing one limit of `per_minute`."""
    run_dir = workdir / f"inbound-{processes}p-{per_minute}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    port = free_port()
    with database() as pg:
        buffer = InboundBuffer(pg)
        items = track_events(events, run_dir.name)
        for start in range(0, events, 10_000):
            buffer.add_many(items[start : start + 10_000])
        buffer.close()
        settings = run_dir / "segment_sync.yaml"
        settings.write_text(yaml.safe_dump(_settings(pg, port, run_dir, per_minute)))
        env = os.environ | {
            "ANTAVO_API_KEY": KEY,
            "ANTAVO_API_SECRET": SECRET,
            LIMITER_URL_ENV: redis_url,
        }
        with Processes(run_dir, env) as procs:
            standin = procs.start("antavo", _standin_cmd(port, per_minute))
            wait_for(lambda: _stats(port) is not None, "the Antavo stand-in")
            cpu_before = cpu_s(standin.pid)
            started = time.perf_counter()
            runs = [procs.start(f"ingest-{k}", _ingest_cmd(settings)) for k in range(processes)]
            codes = [r.wait(900) for r in runs]
            wall_s = time.perf_counter() - started
            standin_cpu = cpu_s(standin.pid) - cpu_before
            stats = _stats(port)
        done = InboundBuffer(pg).counts().get("done", 0)
    verified = (
        codes == [0] * processes
        and stats["events_registered"] == events
        and stats["rate_limited"] == 0
        and done == events
    )
    return {
        "processes": processes,
        "per_minute": per_minute,
        "events": events,
        "wall_s": round(wall_s, 2),
        "events_per_s": round(events / wall_s),
        "requests": stats["requests"],
        "rate_limited": stats["rate_limited"],
        "ceiling_events_per_s": round(per_minute * 0.98 / 60 * 50),
        "standin_cpu_s": round(standin_cpu, 2),
        "exit_codes": codes,
        "verified": verified,
    }


def _settings(pg: str, port: int, run_dir: Path, per_minute: int) -> dict[str, Any]:
    return {
        "inbound": {
            "stack": "test",
            "base_url": f"http://127.0.0.1:{port}",
            "buffer_url": pg,
            "mappings": [MAPPING],
            "rate_limit_per_minute": per_minute,
            "rate_limiter": "redis",
            "rate_limiter_url_env": LIMITER_URL_ENV,
            "chunk_size": 2500,
        },
        "logs": {"dir": str(run_dir / "logs")},
    }


def _standin_cmd(port: int, per_minute: int) -> list[str]:
    return [sys.executable, "-m", "segment_sync.standins.antavo", "--stack", "test",
            "--port", str(port), "--rate-limit-per-minute", str(per_minute),
            "--rate-limit-window", f"{WINDOW_S:g}"]  # fmt: skip


def _ingest_cmd(settings: Path) -> list[str]:
    return [sys.executable, "-m", "segment_sync.cli", "run", "inbound", "--settings", str(settings)]


def _stats(port: int) -> dict[str, Any] | None:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/_standin/stats", timeout=5).json()
    except httpx.HTTPError:
        return None
