"""Outbound benchmark: segment-sync vs the official `segment-analytics-python` client, side by side.

    .venv/bin/python bench/outbound.py [--events 200000] [--backlog 1000000]

What it measures, all in ONE run so the figures share the same (possibly busy) machine:

1. ours: end-to-end events/s of `OutboundSync.run(Stream.EVENTS, ...)` over a fresh SQLite
   loyalty store seeded with N events (all allow-listed, so all become Track calls): store read,
   messages built, batched, gzipped, sent to the Segment stand-in process, Parquet log rows
   written. Seeding is not timed. The stand-in's /_standin/stats must show all N accepted.
2. official (default): `segment.analytics.Client(write_key, host=standin)` with its defaults
   (max_queue_size 10,000, upload_size 100, 1 thread, no gzip), one `track()` per event read from
   the same store, then flush() + join(). Timed from the first read to everything flushed. It drops
   messages when its queue is full: events/s counts DELIVERED events only (what the stand-in
   accepted), and the drop count is reported.
   official (queue raised): the same, but max_queue_size = N + 1, so it drops nothing.
3. peak RSS of our sync over a 1,000,000-event backlog next to the 200,000-event run: each sync
   runs in its own child process; peak RSS is the kernel's high-water mark for that child
   (os.wait4 rusage ru_maxrss), cross-checked by psutil polling every 50 ms.
4. a table, and the figures as JSON in bench/results/outbound.json.

Every run happens in a fresh child process (same interpreter, same imports) against one stand-in
process (`python -m segment_sync.standins.segment`, reset before each run) on a free loopback
port. Data lives in a temporary directory that is removed at the end (--keep-data keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
WRITE_KEY_ENV = "SEGMENT_WRITE_KEY"
BENCH_WRITE_KEY = "bench-us-write-key"  # a made-up key the local stand-in accepts; not a secret
CHUNK = 20_000  # rows per store read, for the official client's loop (our default chunk_size)
RSS_TARGET_BYTES = 1 << 30
RATIO_TARGET = 10.0
POLL_S = 0.05

if str(ROOT) not in sys.path:  # `python bench/outbound.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

import children  # noqa: E402  (bench/ is on the path when run as a script)

from segment_sync.standins.server import free_port  # noqa: E402  (needs the path above)

# ---------------------------------------------------------------------------------------------
# Child processes: one measured run each
# ---------------------------------------------------------------------------------------------


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def child_ours(cfg: dict[str, Any]) -> dict[str, Any]:
    """Our sync over the store; only OutboundSync.run is timed."""
    from segment_sync import factory
    from segment_sync.logs.store import LogWriter
    from segment_sync.loyalty.demo import ACTIONS
    from segment_sync.loyalty.records import Stream
    from segment_sync.settings import parse_settings

    settings = parse_settings(
        {
            "loyalty_store": {"url": cfg["store_url"]},
            "outbound": {
                "base_url": cfg["endpoint"],
                "event_sync": list(ACTIONS),
                "state_url": cfg["state_url"],
            },
            "logs": {"dir": cfg["logs_dir"]},
        }
    )
    logs = LogWriter(settings.logs.dir)
    sync = factory.outbound_sync(settings, os.environ[WRITE_KEY_ENV], logs)
    rss_before = _rss()
    profiler = None
    if cfg.get("cprofile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    result = sync.run(Stream.EVENTS, cfg["run_id"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(cfg["cprofile"])
    c = result.counts
    return {
        "elapsed_s": elapsed,
        "run_cpu_s": cpu,
        "rss_before_run": rss_before,
        "counts": {
            "rows_read": c.rows_read,
            "sent": c.sent,
            "failed": c.failed,
            "skipped": c.skipped,
            "pending": c.pending,
            "not_allow_listed": c.not_allow_listed,
            "requests": c.requests,
            "retries": c.retries,
            "bytes": c.bytes,
        },
        "watermark_after": result.watermark_after,
        "error": result.error,
    }


def child_official(cfg: dict[str, Any]) -> dict[str, Any]:
    """The official client: one track() per event read from the same store, then flush + join."""
    import logging

    from segment.analytics import Client
    from segment.analytics.version import VERSION

    from segment_sync.loyalty.records import Stream
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.segment.messages import message_id

    # A full queue logs one WARNING per dropped message (to stderr via logging's last resort);
    # they are counted below instead. Silencing them only makes the official client faster.
    logging.getLogger("segment").setLevel(logging.ERROR)
    upload_errors: list[int] = []
    kwargs: dict[str, Any] = {"host": cfg["endpoint"]}
    if cfg.get("max_queue_size"):
        kwargs["max_queue_size"] = cfg["max_queue_size"]
    client = Client(
        os.environ[WRITE_KEY_ENV],
        on_error=lambda exc, batch: upload_errors.append(len(batch)),
        **kwargs,
    )
    store = LoyaltyStore(cfg["store_url"])
    upto = store.max_id(Stream.EVENTS)
    rss_before = _rss()
    queued = dropped = 0
    started, cpu = time.perf_counter(), time.process_time()
    after = 0
    while after < upto:
        rows = store.events_after(after, upto, CHUNK)
        if not rows:
            break
        for e in rows:
            ok, _ = client.track(
                user_id=e.customer_id,
                event=e.action,
                properties=e.data,
                timestamp=e.occurred_at,
                message_id=message_id("evt", e.id, e.occurred_at),
            )
            if ok:
                queued += 1
            else:
                dropped += 1
        after = rows[-1].id
    enqueued_s = time.perf_counter() - started
    client.flush()
    client.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "elapsed_s": elapsed,
        "run_cpu_s": cpu,
        "enqueue_s": enqueued_s,
        "rss_before_run": rss_before,
        "queued": queued,
        "dropped_queue_full": dropped,
        "upload_error_messages": sum(upload_errors),
        "library_version": VERSION,
        "max_queue_size": client.queue.maxsize,
        "upload_size": client.consumers[0].upload_size,
        "threads": len(client.consumers),
        "gzip": client.gzip,
    }


def child_main(mode: str, cfg_path: str) -> int:
    cfg = json.loads(Path(cfg_path).read_text())
    result = child_ours(cfg) if mode == "ours" else child_official(cfg)
    import resource

    result["self_ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(cfg["result_path"]).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# Parent: data, stand-in, measured children
# ---------------------------------------------------------------------------------------------


class Standin:
    """The Segment stand-in as a separate process on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"standin-{self.port}.log"
        env = os.environ | {WRITE_KEY_ENV: BENCH_WRITE_KEY}
        cmd = [
            sys.executable, "-m", "segment_sync.standins.segment", "--port", str(self.port),
            "--region", "us", "--write-key-env", f"{WRITE_KEY_ENV}=us", "--no-keep-messages",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stand-in did not start; see {self.log_path}")
            time.sleep(0.1)

    def reset(self) -> None:
        self.http.post("/_standin/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.http.get("/_standin/stats")
        response.raise_for_status()
        return response.json()

    def cpu_s(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def seed_store(path: Path, events: int) -> dict[str, Any]:
    from segment_sync.loyalty.demo import seed
    from segment_sync.loyalty.store import LoyaltyStore

    url = f"sqlite:///{path}"
    store = LoyaltyStore(url)
    started = time.perf_counter()
    seed(store, events, 0)
    elapsed = time.perf_counter() - started
    store.close()
    return {"url": url, "events": events, "seed_s": elapsed, "bytes": path.stat().st_size}


def run_child(mode: str, cfg: dict[str, Any], workdir: Path, timeout_s: float) -> dict[str, Any]:
    """Run one measured child; returns its result plus peak RSS and CPU seen from outside."""
    import psutil

    polled_peak = 0

    def sample(pid: int) -> None:
        nonlocal polled_peak
        with contextlib.suppress(psutil.Error):
            polled_peak = max(polled_peak, psutil.Process(pid).memory_info().rss)

    env = os.environ | {WRITE_KEY_ENV: BENCH_WRITE_KEY}
    script = Path(__file__).resolve()
    result, usage = children.run_child(script, mode, cfg, workdir, timeout_s, env, ROOT, sample)
    result["peak_rss"] = usage.ru_maxrss * 1024  # Linux: KiB
    result["polled_peak_rss"] = polled_peak
    result["child_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def measure(
    standin: Standin, mode: str, cfg: dict[str, Any], workdir: Path, timeout_s: float
) -> dict[str, Any]:
    """Reset the stand-in, run the child, and read what the stand-in accepted."""
    standin.reset()
    cpu_before = standin.cpu_s()
    result = run_child(mode, cfg, workdir, timeout_s)
    result["standin_cpu_s"] = standin.cpu_s() - cpu_before
    stats = standin.stats()
    result["standin"] = {
        k: stats[k]
        for k in (
            "requests",
            "requests_by_status",
            "messages_received",
            "messages_accepted",
            "messages_dropped",
            "duplicate_message_ids",
            "bytes_received",
        )
    }
    delivered = stats["messages_accepted"] - stats["duplicate_message_ids"]
    result["delivered"] = delivered
    result["events_per_s"] = delivered / result["elapsed_s"]
    # Less sensitive to a busy machine than wall time: delivered events per CPU-second spent by
    # the sender process (all threads) plus the stand-in while the sender ran.
    result["events_per_cpu_s"] = delivered / (result["run_cpu_s"] + result["standin_cpu_s"])
    return result


def count_log_rows(logs_dir: str, run_id: str) -> dict[str, int]:
    """Rows our run wrote to the Parquet logs (read after the child exits, not timed)."""
    from segment_sync.logs.views import connect

    con = connect(logs_dir)
    try:
        out = {}
        for table in ("outbound_log", "outbound_messages"):
            sql = f"SELECT count(*) FROM {table} WHERE run_id = ?"
            out[table] = con.execute(sql, [run_id]).fetchone()[0]
        sql = "SELECT count(*) FROM outbound_messages WHERE run_id = ? AND outcome = 'delivered'"
        out["outbound_messages_delivered"] = con.execute(sql, [run_id]).fetchone()[0]
        return out
    finally:
        con.close()


def ours(standin: Standin, store: dict, workdir: Path, tag: str, timeout_s: float, **extra) -> dict:
    run_dir = workdir / tag
    run_dir.mkdir()
    cfg = {
        "tag": tag,
        "run_id": f"bench-{tag}",
        "store_url": store["url"],
        "state_url": f"sqlite:///{run_dir / 'state.db'}",
        "logs_dir": str(run_dir / "logs"),
        "endpoint": standin.url,
        **extra,
    }
    result = measure(standin, "ours", cfg, workdir, timeout_s)
    result["log_rows"] = count_log_rows(cfg["logs_dir"], cfg["run_id"])
    result["events"] = store["events"]
    n = store["events"]
    problems = []
    if result["delivered"] != n:
        problems.append(f"stand-in accepted {result['delivered']} distinct of {n}")
    if result["counts"]["sent"] != n:
        problems.append(f"sync counted {result['counts']['sent']} sent of {n}")
    if result["log_rows"]["outbound_messages_delivered"] != n:
        problems.append(f"{result['log_rows']['outbound_messages_delivered']} delivered log rows")
    if set(result["standin"]["requests_by_status"]) != {"200"}:
        problems.append(f"statuses {result['standin']['requests_by_status']}")
    result["verified"] = not problems
    result["problems"] = problems
    return result


def official(
    standin: Standin, store: dict, workdir: Path, tag: str, timeout_s: float, queue: int | None
) -> dict:
    cfg = {"tag": tag, "store_url": store["url"], "endpoint": standin.url, "max_queue_size": queue}
    result = measure(standin, "official", cfg, workdir, timeout_s)
    result["events"] = store["events"]
    result["dropped"] = store["events"] - result["delivered"]
    return result


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _median_run(runs: list[dict]) -> dict:
    """The run with the median events/s (the middle one; the lower middle for an even count)."""
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    ours_runs, default_runs = raw["runs"]["ours"], raw["runs"]["official_default"]
    raised_runs = raw["runs"].get("official_queue_raised", [])
    o, d = _median_run(ours_runs), _median_run(default_runs)
    s: dict[str, Any] = {
        "events": raw["events"],
        "ours_events_per_s": o["events_per_s"],
        "ours_elapsed_s": o["elapsed_s"],
        "ours_verified": all(r["verified"] for r in ours_runs),
        "official_default_events_per_s": d["events_per_s"],
        "official_default_delivered": d["delivered"],
        "official_default_dropped": d["dropped"],
        "official_default_elapsed_s": d["elapsed_s"],
        "ratio_vs_official_default": o["events_per_s"] / d["events_per_s"],
        "ratio_target": RATIO_TARGET,
        "ours_events_per_s_all": [r["events_per_s"] for r in ours_runs],
        "official_default_events_per_s_all": [r["events_per_s"] for r in default_runs],
        "peak_rss_ours_events": max(r["peak_rss"] for r in ours_runs),
    }
    s["ratio_met"] = s["ratio_vs_official_default"] >= RATIO_TARGET
    if raised_runs:
        q = _median_run(raised_runs)
        s["official_queue_raised_events_per_s"] = q["events_per_s"]
        s["official_queue_raised_delivered"] = q["delivered"]
        s["official_queue_raised_elapsed_s"] = q["elapsed_s"]
        s["official_queue_raised_peak_rss"] = q["peak_rss"]
        s["ratio_vs_official_queue_raised"] = o["events_per_s"] / q["events_per_s"]
    backlog = raw["runs"].get("ours_backlog")
    if backlog:
        b = backlog[0]
        s["backlog_events"] = b["events"]
        s["backlog_events_per_s"] = b["events_per_s"]
        s["backlog_verified"] = b["verified"]
        s["peak_rss_ours_backlog"] = b["peak_rss"]
        small, big = s["peak_rss_ours_events"], b["peak_rss"]
        s["peak_rss_growth_bytes"] = big - small
        s["rss_under_target"] = big < RSS_TARGET_BYTES and small < RSS_TARGET_BYTES
        # "Flat": the 5x bigger backlog costs under 15 % more peak memory than the small run.
        s["rss_flat"] = (big - small) < 0.15 * small
    return s


def table(raw: dict[str, Any], s: dict[str, Any]) -> str:
    n = s["events"]
    ok = lambda flag: "OK" if flag else "MISSED"  # noqa: E731
    rows: list[tuple[str, str, str]] = []
    o = _median_run(raw["runs"]["ours"])
    d = _median_run(raw["runs"]["official_default"])
    rows.append(
        (
            f"ours: OutboundSync.run, {n:,} events",
            f"{s['ours_events_per_s']:,.0f} ev/s",
            f"{s['ours_elapsed_s']:.2f} s, {o['delivered']:,}/{n:,} accepted, "
            f"{o['standin']['requests']} requests, "
            f"verified={'yes' if s['ours_verified'] else 'NO'}",
        )
    )
    rows.append(
        (
            "official client, DEFAULT settings",
            f"{s['official_default_events_per_s']:,.0f} ev/s",
            f"{s['official_default_elapsed_s']:.2f} s; delivered {d['delivered']:,} of {n:,}, "
            f"DROPPED {d['dropped']:,} (queue full: {d['dropped_queue_full']:,}); "
            "ev/s over delivered",
        )
    )
    if "official_queue_raised_events_per_s" in s:
        q = _median_run(raw["runs"]["official_queue_raised"])
        rows.append(
            (
                f"official client, max_queue_size={q['max_queue_size']:,}",
                f"{s['official_queue_raised_events_per_s']:,.0f} ev/s",
                f"{s['official_queue_raised_elapsed_s']:.2f} s; delivered {q['delivered']:,} of "
                f"{n:,}; peak RSS {_mb(q['peak_rss'])} (fairer: drops nothing)",
            )
        )
    rows.append(
        (
            "ratio ours / official (default)",
            f"{s['ratio_vs_official_default']:.1f}x",
            f"target >= {RATIO_TARGET:.0f}x: {ok(s['ratio_met'])}",
        )
    )
    if "ratio_vs_official_queue_raised" in s:
        rows.append(
            (
                "ratio ours / official (queue raised)",
                f"{s['ratio_vs_official_queue_raised']:.1f}x",
                "",
            )
        )
    rows.append(
        (
            f"peak RSS ours, {n:,} events",
            _mb(s["peak_rss_ours_events"]),
            f"RSS after imports/setup {_mb(o['rss_before_run'])}",
        )
    )
    if "peak_rss_ours_backlog" in s:
        b = raw["runs"]["ours_backlog"][0]
        rows.append(
            (
                f"peak RSS ours, {s['backlog_events']:,} backlog",
                _mb(s["peak_rss_ours_backlog"]),
                f"{s['backlog_events_per_s']:,.0f} ev/s, {b['delivered']:,} accepted, "
                f"verified={'yes' if s['backlog_verified'] else 'NO'}",
            )
        )
        rows.append(
            (
                "peak RSS target (< 1 GiB, flat)",
                f"{s['peak_rss_growth_bytes'] / 2**20:+,.0f} MiB",
                f"under 1 GiB: {ok(s['rss_under_target'])}; flat: {ok(s['rss_flat'])}",
            )
        )
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'measure':<{w0}}  {'value':>{w1}}  notes", "-" * (w0 + w1 + 60)]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    cpu = [
        "CPU seconds in the timed part (sender process / stand-in) and delivered events per "
        "CPU-second:",
        f"  ours {o['run_cpu_s']:.1f} / {o['standin_cpu_s']:.1f} -> "
        f"{o['events_per_cpu_s']:,.0f} ev/CPU-s; official default {d['run_cpu_s']:.1f} / "
        f"{d['standin_cpu_s']:.1f} -> {d['events_per_cpu_s']:,.0f} ev/CPU-s",
    ]
    if raw["runs"].get("official_queue_raised"):
        q = _median_run(raw["runs"]["official_queue_raised"])
        cpu[-1] += (
            f"; official queue raised {q['run_cpu_s']:.1f} / {q['standin_cpu_s']:.1f} -> "
            f"{q['events_per_cpu_s']:,.0f} ev/CPU-s"
        )
    if len(raw["runs"]["ours"]) > 1:
        all_ours = ", ".join(f"{v:,.0f}" for v in s["ours_events_per_s_all"])
        all_off = ", ".join(f"{v:,.0f}" for v in s["official_default_events_per_s_all"])
        cpu.append(f"all rounds (median shown): ours [{all_ours}] official default [{all_off}]")
    return "\n".join(lines + ["", *cpu])


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000, help="events for the comparison")
    p.add_argument(
        "--backlog", type=int, default=1_000_000, help="events for the peak-RSS run (0: skip)"
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds of the comparison (median shown)"
    )
    p.add_argument(
        "--no-queue-raised", action="store_true", help="skip the official client with a big queue"
    )
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per measured run")
    p.add_argument(
        "--cprofile", action="store_true", help="one more (unreported) run of ours under cProfile"
    )
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "outbound.json")
    p.add_argument("--keep-data", action="store_true", help="keep the temporary directory")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_child"]:
        return child_main(argv[1], argv[2])
    args = parse_args(argv)
    command = shlex.join([os.path.relpath(sys.executable, ROOT), "bench/outbound.py", *argv])
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-bench-"))
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    raw: dict[str, Any] = {
        "command": command,
        "started_at": started_at.isoformat(),
        "events": args.events,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
        },
        "runs": {"ours": [], "official_default": []},
    }
    standin = None
    try:
        print(f"workdir {workdir}", flush=True)
        print(f"seeding {args.events:,} events (not timed) ...", flush=True)
        store = seed_store(workdir / "loyalty.db", args.events)
        raw["seed"] = {"events": store}
        print(f"  {store['seed_s']:.1f} s", flush=True)
        standin = Standin(workdir)
        print(f"stand-in on {standin.url} (pid {standin.proc.pid})", flush=True)
        if not args.no_queue_raised:
            raw["runs"]["official_queue_raised"] = []
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_}/{args.repeat}", flush=True)
            r = ours(standin, store, workdir, f"ours-{round_}", args.timeout)
            raw["runs"]["ours"].append(r)
            print(
                f"  ours                     {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  peak RSS {_mb(r['peak_rss'])}  "
                f"verified={r['verified']} {'; '.join(r['problems'])}",
                flush=True,
            )
            r = official(standin, store, workdir, f"official-default-{round_}", args.timeout, None)
            raw["runs"]["official_default"].append(r)
            print(
                f"  official (default)       {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  delivered {r['delivered']:,}, dropped {r['dropped']:,}",
                flush=True,
            )
            if not args.no_queue_raised:
                tag = f"official-queue-raised-{round_}"
                r = official(standin, store, workdir, tag, args.timeout, args.events + 1)
                raw["runs"]["official_queue_raised"].append(r)
                print(
                    f"  official (queue raised)  {r['events_per_s']:>9,.0f} ev/s  "
                    f"{r['elapsed_s']:.2f} s  delivered {r['delivered']:,}, "
                    f"dropped {r['dropped']:,}",
                    flush=True,
                )
        if args.backlog:
            print(f"seeding {args.backlog:,}-event backlog (not timed) ...", flush=True)
            backlog = seed_store(workdir / "loyalty-backlog.db", args.backlog)
            raw["seed"]["backlog"] = backlog
            print(f"  {backlog['seed_s']:.1f} s", flush=True)
            r = ours(standin, backlog, workdir, "ours-backlog", args.timeout)
            raw["runs"]["ours_backlog"] = [r]
            print(
                f"  ours, backlog            {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  peak RSS {_mb(r['peak_rss'])}  "
                f"verified={r['verified']} {'; '.join(r['problems'])}",
                flush=True,
            )
        if args.cprofile:
            profile_path = args.output.with_name("outbound-ours.prof")
            profile_path.parent.mkdir(parents=True, exist_ok=True)
            ours(standin, store, workdir, "ours-cprofile", args.timeout, cprofile=str(profile_path))
            raw["cprofile"] = str(profile_path)
            print(f"cProfile of ours written to {profile_path}", flush=True)
    finally:
        if standin is not None:
            standin.stop()
        if args.keep_data:
            print(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    raw["machine"]["loadavg_after"] = os.getloadavg()
    raw["finished_at"] = datetime.now(UTC).isoformat()
    raw["summary"] = summary = summarise(raw)
    print()
    print(table(raw, summary))
    print()
    print(
        "load average before/after: "
        f"{' '.join(f'{x:.2f}' for x in load_before)} / "
        f"{' '.join(f'{x:.2f}' for x in raw['machine']['loadavg_after'])} "
        f"on {os.cpu_count()} CPUs (a shared machine: compare within this run only)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(raw, indent=2, default=str))
    print(f"results: {os.path.relpath(args.output, ROOT)}")
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
