"""Peak RSS of `segment-sync run outbound` by backlog, and RSS over a follow run's window.

Backlog: the whole CLI process over a 100,000-event store and a bigger one (1,000,000 by
default), each its own process; peak RSS is the kernel's high-water mark (os.wait4). Targets:
the big run at most 350 MiB and within 10 % of the 100k run.

Window: `segment-sync run outbound --follow` with `outbound.follow_s` = the window, while this
process appends 200 events/s to the store; the child's RSS is sampled every second. Target: it
ends within 10 % of where it stood once warm (after the first tenth of the window, at least 15 s); the slope
(MiB per hour, least squares over the warm samples) says where an hour would end.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RSS_LIMIT_MIB = 350
RSS_FLAT = 0.10
WINDOW_FLAT = 0.10
RATE_EV_S = 200


def cli_rss(cli: Path, settings: Path, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    """Run `segment-sync run outbound` once; its wall time, CPU, peak RSS and RSS samples."""
    import psutil

    cmd = [str(cli), "run", "outbound", "--settings", str(settings), "--stream", "events", *extra]
    samples: list[tuple[float, int]] = []
    with open(settings.with_suffix(".log"), "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                samples.append(
                    (
                        time.perf_counter() - started,
                        psutil.Process(pid or proc.pid).memory_info().rss,
                    )
                )
            time.sleep(0.25)
    code = os.waitstatus_to_exitcode(status)
    if code:
        tail = settings.with_suffix(".log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{tail}")
    return {
        "elapsed_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
        "samples": samples,
    }


def window(
    cli: Path, settings_for: Any, store_url: str, env: dict[str, str], seconds: float
) -> dict[str, Any]:
    """A follow run of `seconds` while 200 events/s are appended; its RSS over time."""
    import threading

    from segment_sync.loyalty.demo import ACTIONS, customers, generate_events
    from segment_sync.loyalty.store import LoyaltyStore

    settings = settings_for({"follow_s": seconds, "poll_interval_ms": 250})
    store = LoyaltyStore(store_url)
    rng = random.Random(11)
    people = customers(1000, rng)
    stop = threading.Event()
    appended = 0

    def append() -> None:
        nonlocal appended
        tick = 0.25
        due = time.monotonic()
        while not stop.is_set():
            batch = list(generate_events(int(RATE_EV_S * tick), people, rng))
            store.append_events([e for e in batch if e.action in ACTIONS])
            appended += len(batch)
            due += tick
            stop.wait(max(0.0, due - time.monotonic()))

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        run = cli_rss(cli, settings, env, ["--follow"])
    finally:
        stop.set()
        writer.join()
        store.close()
    warm = max(seconds / 10, 15.0)  # start-up and the first polls are not the steady state
    samples = [(t, rss) for t, rss in run["samples"] if t >= warm and rss > 0]
    start_rss, end_rss = samples[0][1], samples[-1][1]
    ts = [t for t, _ in samples]
    rs = [r / 2**20 for _, r in samples]
    mean_t, mean_r = sum(ts) / len(ts), sum(rs) / len(rs)
    var = sum((t - mean_t) ** 2 for t in ts) or 1.0
    slope = sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, rs, strict=True)) / var
    return {
        "seconds": seconds,
        "appended": appended,
        "start_rss": start_rss,
        "end_rss": end_rss,
        "peak_rss": run["peak_rss"],
        "slope_mib_per_hour": slope * 3600,
        "change": end_rss / start_rss - 1,
        "flat": abs(end_rss / start_rss - 1) <= WINDOW_FLAT,
        "cpu_s": run["cpu_s"],
    }


def summary(small: dict, big: dict, events: tuple[int, int]) -> dict[str, Any]:
    growth = big["peak_rss"] / small["peak_rss"] - 1
    return {
        "events": events,
        "peak_rss": (small["peak_rss"], big["peak_rss"]),
        "growth": growth,
        "under_limit": big["peak_rss"] <= RSS_LIMIT_MIB * 2**20,
        "flat": growth <= RSS_FLAT,
    }


def lines(s: dict, w: dict | None) -> list[tuple[str, str, str]]:
    ok = lambda flag: "OK" if flag else "MISSED"  # noqa: E731
    (n_small, n_big), (r_small, r_big) = s["events"], s["peak_rss"]
    rows = [
        (
            f"peak RSS, segment-sync run outbound, {n_small:,} / {n_big:,}",
            f"{r_small / 2**20:,.0f} / {r_big / 2**20:,.0f} MiB",
            f"{s['growth']:+.0%}; <= {RSS_LIMIT_MIB} MiB: {ok(s['under_limit'])}; "
            f"within {RSS_FLAT:.0%}: {ok(s['flat'])}",
        )
    ]
    if w:
        rows.append(
            (
                f"RSS over a {w['seconds']:.0f} s follow run at {RATE_EV_S} ev/s",
                f"{w['start_rss'] / 2**20:,.0f} -> {w['end_rss'] / 2**20:,.0f} MiB",
                f"{w['change']:+.1%} (slope {w['slope_mib_per_hour']:+.0f} MiB/h, "
                f"{w['appended']:,} events); within {WINDOW_FLAT:.0%}: {ok(w['flat'])}",
            )
        )
    return rows


if __name__ == "__main__":  # a quick look: python bench/outbound_memory.py <settings.yaml>
    print(
        json.dumps(
            cli_rss(
                Path(sys.executable).with_name("segment-sync"),
                Path(sys.argv[1]),
                dict(os.environ),
                [],
            ),
            default=str,
        )[:500]
    )
