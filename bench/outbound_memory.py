"""Peak RSS of `segment-sync run outbound` by backlog, and RSS over a follow run's window.

    .venv/bin/python bench/outbound_memory.py [--backlogs 100000,1000000,10000000]

Backlog: the whole CLI process over a 100,000-event store and bigger ones (1,000,000 and
10,000,000 standalone; bench/outbound.py runs 100k and --backlog), each its own process; peak
RSS is the kernel's high-water mark (os.wait4). Targets (issue 26): at 1,000,000 at most
350 MiB and within 10 % of the 100k run; at 10,000,000 at most 300 MiB. Stores past 200,000
events repeat the seeded rows under new ids in SQL (what is sent is the same kind of event;
seeding 10M row by row took ~10 minutes). Run standalone, it prints the table with the load
average and exits 1 on a MISS.

Window: `segment-sync run outbound --follow` with `outbound.follow_s` = the window, while this
process appends 200 events/s to the store; the child's RSS is sampled every second. Target: it
ends within 10 % of where it stood once warm (after the first tenth of the window, at least 15 s); the slope
(MiB per hour, least squares over the warm samples) says where an hour would end.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RSS_LIMIT_MIB = 350
HUGE_BACKLOG = 10_000_000
HUGE_LIMIT_MIB = 300  # the target at 10M
RSS_FLAT = 0.10
SEEDED_ROWS = 200_000  # rows made by the demo generator; past them, copies under new ids
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


def summary(small: dict, big: dict, events: tuple[int, int], huge: dict | None = None) -> dict:
    """Peaks and targets: the big run against 350 MiB and the 100k run; the 10M one, if run."""
    growth = big["peak_rss"] / small["peak_rss"] - 1
    out: dict[str, Any] = {
        "events": events,
        "peak_rss": (small["peak_rss"], big["peak_rss"]),
        "growth": growth,
        "under_limit": big["peak_rss"] <= RSS_LIMIT_MIB * 2**20,
        "flat": growth <= RSS_FLAT,
    }
    if huge is not None:
        out["huge"] = {
            "events": HUGE_BACKLOG,
            "peak_rss": huge["peak_rss"],
            "growth": huge["peak_rss"] / small["peak_rss"] - 1,
            "under_limit": huge["peak_rss"] <= HUGE_LIMIT_MIB * 2**20,
            "quarters": quarters(huge["samples"]),
        }
    return out


def quarters(samples: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """RSS at a quarter, half, three quarters and the end of a run (is it level?)."""
    live = [(t, rss) for t, rss in samples if rss > 0]
    if not live:
        return []
    end = live[-1][0]
    return [next((t, r) for t, r in live if t >= end * q) for q in (0.25, 0.5, 0.75, 1.0)]


def met(s: dict) -> bool:
    """Every backlog target of `summary` met."""
    return s["under_limit"] and s["flat"] and s.get("huge", {}).get("under_limit", True)


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
    if "huge" in s:
        h = s["huge"]
        level = " / ".join(f"{r / 2**20:,.0f}" for _, r in h["quarters"])
        rows.append(
            (
                f"peak RSS, segment-sync run outbound, {h['events']:,}",
                f"{h['peak_rss'] / 2**20:,.0f} MiB",
                f"{h['growth']:+.0%} on {n_small:,}; <= {HUGE_LIMIT_MIB} MiB: "
                f"{ok(h['under_limit'])}; RSS at 1/4, 1/2, 3/4, end: {level} MiB",
            )
        )
    if w:
        rows.append(window_line(w))
    return rows


def window_line(w: dict) -> tuple[str, str, str]:
    """The follow window's RSS from start to end, against WINDOW_FLAT."""
    return (
        f"RSS over a {w['seconds']:.0f} s follow run at {RATE_EV_S} ev/s",
        f"{w['start_rss'] / 2**20:,.0f} -> {w['end_rss'] / 2**20:,.0f} MiB",
        f"{w['change']:+.1%} (slope {w['slope_mib_per_hour']:+.0f} MiB/h, "
        f"{w['appended']:,} events); within {WINDOW_FLAT:.0%}: "
        f"{'OK' if w['flat'] else 'MISSED'}",
    )


def follow_window(
    cli: Path, outbound: Any, standin: Any, workdir: Path, env: dict[str, str], seconds: float
) -> dict[str, Any]:
    """`window` on an empty store of its own, against the same stand-in."""
    store = outbound.seed_store(workdir / "loyalty-follow.db", 0)
    run_dir = workdir / "follow"
    run_dir.mkdir()
    standin.reset()
    print(f"follow run for {seconds:.0f} s at {RATE_EV_S} ev/s ...", flush=True)

    def settings_for(extra: dict) -> Path:
        return outbound.cli_settings(store["url"], standin.url, run_dir, **extra)

    return window(cli, settings_for, store["url"], env, seconds)


def grow_store(path: Path, events: int) -> dict[str, Any]:
    """A SQLite loyalty store of `events` events: the demo generator's first SEEDED_ROWS, then
    copies of them under new ids (INSERT ... SELECT), so 10M are made in about a minute."""
    import sqlite3

    from segment_sync.loyalty.demo import seed
    from segment_sync.loyalty.store import LoyaltyStore

    url = f"sqlite:///{path}"
    started = time.perf_counter()
    store = LoyaltyStore(url)
    seed(store, min(events, SEEDED_ROWS), 0)
    store.close()
    columns = "customer_id, external_customer_id, action, data, occurred_at, origin"
    with contextlib.closing(sqlite3.connect(path)) as db:
        have = min(events, SEEDED_ROWS)
        while have < events:
            more = min(have, events - have)
            db.execute(
                f"INSERT INTO loyalty_events ({columns}) "
                f"SELECT {columns} FROM loyalty_events ORDER BY id LIMIT ?",
                (more,),
            )
            db.commit()
            have += more
        (count,) = db.execute("SELECT count(*) FROM loyalty_events").fetchone()
    assert count == events, (count, events)
    return {"url": url, "events": events, "seed_s": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    """Each backlog's `run outbound` against one stand-in; the table; 1 on a MISS."""
    import argparse
    import shutil
    import tempfile

    import outbound  # the stand-in and the settings file bench/outbound.py uses

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--backlogs", default=f"100000,1000000,{HUGE_BACKLOG}", help="'' to skip the peak runs"
    )
    p.add_argument(
        "--window-s", type=float, default=0, help="a follow run this long at 200 ev/s (0: none)"
    )
    args = p.parse_args(argv)
    backlogs = [int(n) for n in args.backlogs.split(",") if n]
    if len(backlogs) == 1 or not (backlogs or args.window_s):
        p.error("--backlogs takes at least two backlogs (the first is the baseline), or ''")
    cli = Path(sys.executable).with_name("segment-sync")
    env = os.environ | {outbound.WRITE_KEY_ENV: outbound.BENCH_WRITE_KEY}
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-memory-"))
    runs: dict[int, dict] = {}
    w: dict[str, Any] | None = None
    standin = outbound.Standin(workdir)
    try:
        for n in backlogs:
            store = grow_store(workdir / f"loyalty-{n}.db", n)
            print(f"{n:>11,} events seeded in {store['seed_s']:.0f} s", flush=True)
            run_dir = workdir / f"rss-{n}"
            run_dir.mkdir()
            standin.reset()
            runs[n] = cli_rss(
                cli, outbound.cli_settings(store["url"], standin.url, run_dir), env, []
            )
            runs[n]["delivered"] = standin.stats()["messages_accepted"]
            Path(store["url"].removeprefix("sqlite:///")).unlink()
            print(
                f"{n:>11,} events: peak RSS {runs[n]['peak_rss'] / 2**20:,.0f} MiB, "
                f"{runs[n]['elapsed_s']:.0f} s, delivered {runs[n]['delivered']:,}",
                flush=True,
            )
        if args.window_s:
            w = follow_window(cli, outbound, standin, workdir, env, args.window_s)
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows: list[tuple[str, str, str]] = []
    ok = w is None or w["flat"]
    if backlogs:
        small, big = runs[backlogs[0]], runs[backlogs[1]]
        s = summary(small, big, (backlogs[0], backlogs[1]), runs.get(HUGE_BACKLOG))
        rows = lines(s, w)
        ok = ok and met(s)
    elif w is not None:
        rows = [window_line(w)]
    verified = all(r["delivered"] == n for n, r in runs.items())
    print()
    for a, b, c in rows:
        print(f"{a:<48} {b:>17}  {c}")
    load_after = os.getloadavg()
    print(
        f"\nload average before/after: {' '.join(f'{x:.2f}' for x in load_before)} / "
        f"{' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} CPUs"
    )
    print(f"command: {sys.executable} bench/outbound_memory.py {' '.join(argv)}".rstrip())
    if not (ok and verified):
        print("MISS: at least one target above is MISSED (or a run was not verified)")
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main(sys.argv[1:]))
