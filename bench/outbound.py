"""Outbound benchmark: segment-sync vs the official `segment-analytics-python` client, side by side.

    .venv/bin/python bench/outbound.py [--events 200000] [--backlog 1000000]

What it measures, all in ONE run so the figures share the same (possibly busy) machine:

1. ours, as a user times it: the whole `segment-sync run outbound --stream events` process over
   a fresh SQLite loyalty store seeded with N events (all allow-listed, so all become Track
   calls), minus the same process over an empty store (start-up and exit). Store read, messages
   built, batched, gzipped, sent to the Segment stand-in process, Parquet log rows written,
   progress saved. The stand-in must have accepted all N. The headline ratio uses this figure.
   Also the stand-in's CPU while it ran: it is one process, so near 100 % of a core it is the
   limit of the measurement rather than the sync.
2. ours, in-process: `OutboundSync.run(Stream.EVENTS, ...)` alone, timed inside a child.
3. official (default): `segment.analytics.Client(write_key, host=standin)` with its defaults
   (max_queue_size 10,000, upload_size 100, 1 thread, no gzip), one `track()` per event read from
   the same store, then flush() + join(). Timed from the first read to everything flushed. It drops
   messages when its queue is full: events/s counts DELIVERED events only (what the stand-in
   accepted), and the drop count is reported.
   official (queue raised): the same, but max_queue_size = N + 1, so it drops nothing.
   official (tuned): upload_size 2500, thread 2, max_queue_size N + 1.
   Delivered events per CPU-second (sender + stand-in) for each.
4. peak RSS of our sync over a 1,000,000-event backlog (--huge: and 10,000,000) next to a 100,000-event run: each sync
   runs in its own child process; peak RSS is the kernel's high-water mark for that child
   (os.wait4 rusage ru_maxrss), cross-checked by psutil polling every 50 ms.
5. a table, and the figures as JSON in bench/results/outbound.json. Exits 1 on a MISS.

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
FLOOR_RATIO_TARGET = 1.5
RATIO_TARGET = 10.0
POLL_S = 0.05

if str(ROOT) not in sys.path:  # `python bench/outbound.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

import children  # noqa: E402  (bench/ is on the path when run as a script)
import outbound_floor  # noqa: E402
import outbound_log_row  # noqa: E402
import outbound_memory  # noqa: E402

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
    logs = (
        outbound_floor.no_logs_writer()(settings.logs.dir)
        if cfg.get("no_logs")
        else LogWriter(settings.logs.dir)
    )
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
    for option in ("max_queue_size", "upload_size", "thread"):
        if cfg.get(option):
            kwargs[option] = cfg[option]
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
    if mode == "floor":
        result = outbound_floor.child_floor(cfg, os.environ[WRITE_KEY_ENV])
    elif mode == "log_row":
        result = outbound_log_row.child_log_row(cfg, os.environ[WRITE_KEY_ENV])
    else:
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
    n = result["events"] = store["events"]
    delivered_rows = {"outbound_messages_delivered": n}  # no logs: nothing to count
    logged = (
        delivered_rows if extra.get("no_logs") else count_log_rows(cfg["logs_dir"], cfg["run_id"])
    )
    result["log_rows"] = logged
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


def cli_settings(store_url: str, endpoint: str, run_dir: Path, **outbound: Any) -> Path:
    """The settings file a user would write for this store and endpoint."""
    from segment_sync.loyalty.demo import ACTIONS

    settings = {
        "loyalty_store": {"url": store_url},
        "outbound": {
            "base_url": endpoint,
            "event_sync": list(ACTIONS),
            "state_url": f"sqlite:///{run_dir / 'state.db'}",
            **outbound,
        },
        "logs": {"dir": str(run_dir / "logs")},
    }
    path = run_dir / "segment_sync.yaml"
    path.write_text(json.dumps(settings))  # JSON is YAML
    return path


def cli_process(settings: Path, timeout_s: float) -> dict[str, Any]:
    """`segment-sync run outbound --stream events`, the whole process timed as a user would."""
    cmd = [
        str(Path(sys.executable).with_name("segment-sync")), "run", "outbound",
        "--settings", str(settings), "--stream", "events",
    ]  # fmt: skip
    env = os.environ | {WRITE_KEY_ENV: BENCH_WRITE_KEY}
    log_path = settings.with_suffix(".log")
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or elapsed > timeout_s:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{shlex.join(cmd)} exited {code} in {elapsed:.0f} s:\n{tail}")
    return {
        "elapsed_s": elapsed,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
    }


def cli(
    standin: Standin, store: dict, empty: dict, workdir: Path, tag: str, timeout_s: float
) -> dict:
    """The full CLI process over the store, minus the same process over an empty store."""
    runs = {}
    for name, source in (("empty", empty), ("full", store)):
        run_dir = workdir / f"{tag}-{name}"
        run_dir.mkdir()
        settings = cli_settings(source["url"], standin.url, run_dir)
        standin.reset()
        cpu_before = standin.cpu_s()
        runs[name] = cli_process(settings, timeout_s)
        runs[name]["standin_cpu_s"] = standin.cpu_s() - cpu_before
        runs[name]["standin"] = standin.stats()
    full, empty_run = runs["full"], runs["empty"]
    delivered = full["standin"]["messages_accepted"] - full["standin"]["duplicate_message_ids"]
    work_s = full["elapsed_s"] - empty_run["elapsed_s"]
    work_cpu = full["cpu_s"] - empty_run["cpu_s"]
    return {
        "events": store["events"],
        "delivered": delivered,
        "verified": delivered == store["events"],
        "elapsed_s": work_s,
        "process_s": full["elapsed_s"],
        "startup_s": empty_run["elapsed_s"],
        "run_cpu_s": work_cpu,
        "standin_cpu_s": full["standin_cpu_s"],
        "events_per_s": delivered / work_s,
        "events_per_cpu_s": delivered / (work_cpu + full["standin_cpu_s"]),
        # The stand-in is one asyncio process: near 1.0 it is the limit, not the sync.
        "standin_core_busy": full["standin_cpu_s"] / work_s,
        "standin_cpu_share": full["standin_cpu_s"] / (work_cpu + full["standin_cpu_s"]),
        "peak_rss": full["peak_rss"],
    }


def official(
    standin: Standin, store: dict, workdir: Path, tag: str, timeout_s: float, **options: int
) -> dict:
    """The official client; `options` are its Client arguments (max_queue_size, upload_size, thread)."""
    cfg = {"tag": tag, "store_url": store["url"], "endpoint": standin.url, **options}
    result = measure(standin, "official", cfg, workdir, timeout_s)
    result["events"] = store["events"]
    result["dropped"] = store["events"] - result["delivered"]
    return result


def floor(standin: Standin, store: dict, workdir: Path, tag: str, timeout_s: float) -> dict:
    """The naive serial script (bench/outbound_floor.py) over the same store."""
    cfg = {"tag": tag, "store_url": store["url"], "endpoint": standin.url}
    result = measure(standin, "floor", cfg, workdir, timeout_s)
    result["events"] = store["events"]
    result["verified"] = result["delivered"] == store["events"] and set(
        result["standin"]["requests_by_status"]
    ) == {"200"}
    result["problems"] = [] if result["verified"] else [f"delivered {result['delivered']:,}"]
    return result


def log_row(standin: Standin, workdir: Path, timeout_s: float) -> dict:
    """CPU per body: sending it, and its log row (bench/outbound_log_row.py), on the bodies
    the first in-process run sent."""
    logs_dir = workdir / "ours-1" / "logs"
    cfg = {"tag": "log-row", "logs_dir": str(logs_dir), "endpoint": standin.url, "bodies": 44}
    standin.reset()
    return run_child("log_row", cfg, workdir, timeout_s)


def _us(r: dict) -> str:
    """CPU per delivered event of the sending process (all its threads)."""
    return f"{r['run_cpu_s'] / max(r['delivered'], 1) * 1e6:.1f} µs CPU/event"


def memory(standin: Standin, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Peak RSS of the CLI by backlog (100k and --backlog), then RSS over a follow window."""
    cli_path = Path(sys.executable).with_name("segment-sync")
    env = os.environ | {WRITE_KEY_ENV: BENCH_WRITE_KEY}
    runs = {}
    backlogs = (100_000, args.backlog, *([outbound_memory.HUGE_BACKLOG] if args.huge else []))
    for n in backlogs:
        print(f"seeding {n:,} events for the peak-RSS run (not timed) ...", flush=True)
        store = outbound_memory.grow_store(workdir / f"loyalty-{n}.db", n)
        run_dir = workdir / f"rss-{n}"
        run_dir.mkdir()
        standin.reset()
        runs[n] = outbound_memory.cli_rss(
            cli_path, cli_settings(store["url"], standin.url, run_dir), env, []
        )
        delivered = standin.stats()["messages_accepted"]
        runs[n]["delivered"] = delivered
        print(
            f"  run outbound, {n:>10,}   peak RSS {_mb(runs[n]['peak_rss'])}  "
            f"{runs[n]['elapsed_s']:.1f} s  delivered {delivered:,}",
            flush=True,
        )
    out: dict[str, Any] = {
        "runs": {str(n): {k: v for k, v in r.items() if k != "samples"} for n, r in runs.items()},
        "summary": outbound_memory.summary(
            runs[100_000],
            runs[args.backlog],
            (100_000, args.backlog),
            runs.get(outbound_memory.HUGE_BACKLOG) if args.huge else None,
        ),
        "verified": all(r["delivered"] == n for n, r in runs.items()),
    }
    if args.window_s:
        print(f"follow run for {args.window_s:.0f} s at 200 ev/s ...", flush=True)
        store = seed_store(workdir / "loyalty-follow.db", 0)
        run_dir = workdir / "follow"
        run_dir.mkdir()
        standin.reset()

        def settings_for(extra: dict) -> Path:
            return cli_settings(store["url"], standin.url, run_dir, **extra)

        w = outbound_memory.window(cli_path, settings_for, store["url"], env, args.window_s)
        out["window"] = w
        print(
            f"  RSS {_mb(w['start_rss'])} -> {_mb(w['end_rss'])} ({w['change']:+.1%}), "
            f"slope {w['slope_mib_per_hour']:+.0f} MiB/h",
            flush=True,
        )
    return out


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
    runs = raw["runs"]
    c, o = _median_run(runs["cli"]), _median_run(runs["ours"])
    d, t = _median_run(runs["official_default"]), _median_run(runs["official_tuned"])
    s: dict[str, Any] = {
        "events": raw["events"],
        "cli_events_per_s": c["events_per_s"],
        "cli_elapsed_s": c["elapsed_s"],
        "cli_startup_s": c["startup_s"],
        "cli_verified": all(r["verified"] for r in runs["cli"]),
        "cli_events_per_cpu_s": c["events_per_cpu_s"],
        "standin_core_busy": c["standin_core_busy"],
        "standin_cpu_share": c["standin_cpu_share"],
        "ours_events_per_s": o["events_per_s"],
        "ours_elapsed_s": o["elapsed_s"],
        "ours_verified": all(r["verified"] for r in runs["ours"]),
        "ours_events_per_cpu_s": o["events_per_cpu_s"],
        "official_default_events_per_s": d["events_per_s"],
        "official_default_delivered": d["delivered"],
        "official_default_dropped": d["dropped"],
        "official_default_events_per_cpu_s": d["events_per_cpu_s"],
        "official_tuned_events_per_s": t["events_per_s"],
        "official_tuned_dropped": t["dropped"],
        "official_tuned_events_per_cpu_s": t["events_per_cpu_s"],
        "ratio_vs_official_default": c["events_per_s"] / d["events_per_s"],
        "ratio_vs_official_tuned": c["events_per_s"] / t["events_per_s"],
        "ratio_in_process_vs_official_default": o["events_per_s"] / d["events_per_s"],
        "ratio_target": RATIO_TARGET,
        "all_rounds": {k: [r["events_per_s"] for r in v] for k, v in runs.items()},
    }
    s["ratio_met"] = s["ratio_vs_official_default"] >= RATIO_TARGET
    if runs.get("official_queue_raised"):
        q = _median_run(runs["official_queue_raised"])
        s["official_queue_raised_events_per_s"] = q["events_per_s"]
        s["ratio_vs_official_queue_raised"] = c["events_per_s"] / q["events_per_s"]
    f, nl = _median_run(runs["floor"]), _median_run(runs["ours_no_logs"])

    def per_event(kind: str) -> float:
        """The median over the rounds of CPU seconds per delivered event (not the CPU of the
        median-throughput round: a round's speed and its CPU vary apart on a shared machine)."""
        values = sorted(r["run_cpu_s"] / max(r["delivered"], 1) for r in runs[kind])
        return values[(len(values) - 1) // 2]

    s.update(
        {
            "floor_events_per_s": f["events_per_s"],
            "floor_verified": all(r["verified"] for r in runs["floor"]),
            "ours_no_logs_events_per_s": nl["events_per_s"],
            "ratio_vs_floor": c["events_per_s"] / f["events_per_s"],
            "ratio_no_logs_vs_floor": nl["events_per_s"] / f["events_per_s"],
            "cpu_us_per_event": {
                "cli": per_event("cli") * 1e6,
                "ours": per_event("ours") * 1e6,
                "ours_no_logs": per_event("ours_no_logs") * 1e6,
                "floor": per_event("floor") * 1e6,
            },
            "cpu_us_per_event_rounds": {
                kind: [r["run_cpu_s"] / max(r["delivered"], 1) * 1e6 for r in runs[kind]]
                for kind in ("cli", "ours", "ours_no_logs", "floor")
            },
        }
    )
    s["floor_ratio_met"] = s["ratio_vs_floor"] >= FLOOR_RATIO_TARGET
    row = raw.get("log_row")
    if row:
        s["log_row_ms_per_body"] = row["log_row_cpu_s"] * 1e3
        s["send_ms_per_body"] = row["send_cpu_s"] * 1e3
        s["log_row_met"] = row["log_row_cpu_s"] <= row["send_cpu_s"]
    s["cpu_met"] = per_event("cli") <= per_event("floor")
    memory = raw.get("memory")
    if memory:
        s["memory"] = memory["summary"]
        s["memory_verified"] = memory["verified"]
        if "window" in memory:
            s["window"] = memory["window"]
    return s


def table(raw: dict[str, Any], s: dict[str, Any]) -> str:
    n = s["events"]
    ok = lambda flag: "OK" if flag else "MISSED"  # noqa: E731
    runs = raw["runs"]
    c, o = _median_run(runs["cli"]), _median_run(runs["ours"])
    d, t = _median_run(runs["official_default"]), _median_run(runs["official_tuned"])

    def per_cpu(r: dict) -> str:
        return f"{r['events_per_cpu_s']:,.0f} ev/CPU-s ({r['run_cpu_s']:.1f} + stand-in {r['standin_cpu_s']:.1f} CPU-s)"

    rows: list[tuple[str, str, str]] = [
        (
            f"ours: segment-sync run outbound, {n:,} events",
            f"{s['cli_events_per_s']:,.0f} ev/s",
            f"{c['elapsed_s']:.2f} s = process {c['process_s']:.2f} s - empty run "
            f"{c['startup_s']:.2f} s; {per_cpu(c)}; verified={'yes' if s['cli_verified'] else 'NO'}",
        ),
        (
            "  the stand-in while it ran",
            f"{s['standin_core_busy']:.0%}",
            f"of one core busy (one process: near 100 % it is the limit); "
            f"{s['standin_cpu_share']:.0%} of all CPU spent",
        ),
        (
            "ours: OutboundSync.run in-process",
            f"{s['ours_events_per_s']:,.0f} ev/s",
            f"{s['ours_elapsed_s']:.2f} s; {per_cpu(o)}; "
            f"verified={'yes' if s['ours_verified'] else 'NO'}",
        ),
        (
            "official client, DEFAULT settings",
            f"{s['official_default_events_per_s']:,.0f} ev/s",
            f"{d['elapsed_s']:.2f} s; delivered {d['delivered']:,}, DROPPED {d['dropped']:,} "
            f"(ev/s over delivered); {per_cpu(d)}",
        ),
        (
            "official client, TUNED (upload_size 2500, thread 2, big queue)",
            f"{s['official_tuned_events_per_s']:,.0f} ev/s",
            f"{t['elapsed_s']:.2f} s; delivered {t['delivered']:,}, dropped {t['dropped']:,}; "
            f"{per_cpu(t)}",
        ),
    ]
    if "official_queue_raised_events_per_s" in s:
        q = _median_run(runs["official_queue_raised"])
        rows.append(
            (
                f"official client, max_queue_size={q['max_queue_size']:,}",
                f"{s['official_queue_raised_events_per_s']:,.0f} ev/s",
                f"{q['elapsed_s']:.2f} s; delivered {q['delivered']:,}; {per_cpu(q)}",
            )
        )
    rows += [
        (
            "ratio CLI / official (default)",
            f"{s['ratio_vs_official_default']:.1f}x",
            f"target >= {RATIO_TARGET:.0f}x: {ok(s['ratio_met'])} (moonshot 25x)",
        ),
        ("ratio CLI / official (tuned)", f"{s['ratio_vs_official_tuned']:.1f}x", ""),
        (
            "ratio in-process / official (default)",
            f"{s['ratio_in_process_vs_official_default']:.1f}x",
            "",
        ),
        (
            f"peak RSS ours, in-process, {n:,} events",
            _mb(max(r["peak_rss"] for r in runs["ours"])),
            f"RSS after imports/setup {_mb(o['rss_before_run'])}",
        ),
    ]
    f, nl = _median_run(runs["floor"]), _median_run(runs["ours_no_logs"])
    cpu = s["cpu_us_per_event"]
    rows += [
        (
            "floor: naive serial script (bench/outbound_floor.py)",
            f"{s['floor_events_per_s']:,.0f} ev/s",
            f"{f['elapsed_s']:.2f} s; {cpu['floor']:.1f} µs CPU/event; "
            f"verified={'yes' if s['floor_verified'] else 'NO'}",
        ),
        (
            "ours, in-process, no logging",
            f"{s['ours_no_logs_events_per_s']:,.0f} ev/s",
            f"{nl['elapsed_s']:.2f} s; {cpu['ours_no_logs']:.1f} µs CPU/event",
        ),
        (
            "ratio CLI / floor",
            f"{s['ratio_vs_floor']:.2f}x",
            f"target >= {FLOOR_RATIO_TARGET}x: {ok(s['floor_ratio_met'])}; "
            f"no logging / floor {s['ratio_no_logs_vs_floor']:.2f}x",
        ),
        (
            "CPU per event, CLI vs floor",
            f"{cpu['cli']:.1f} / {cpu['floor']:.1f} µs",
            f"at or below the floor: {ok(s['cpu_met'])} (in-process {cpu['ours']:.1f}, "
            f"no logging {cpu['ours_no_logs']:.1f})",
        ),
    ]
    if "log_row_met" in s:
        row = raw["log_row"]
        rows.append(
            (
                "a request body's log row vs sending it",
                f"{s['log_row_ms_per_body']:.2f} / {s['send_ms_per_body']:.2f} ms",
                f"CPU per body ({row['bodies']} bodies of {row['body_bytes'] / 1e3:,.0f} KB); "
                f"log row at most sending: {ok(s['log_row_met'])}",
            )
        )
    if "memory" in s:
        rows += outbound_memory.lines(s["memory"], s.get("window"))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'measure':<{w0}}  {'value':>{w1}}  notes", "-" * (w0 + w1 + 60)]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    if len(runs["cli"]) > 1:
        lines.append("")
        lines.append("all rounds, ev/s (median shown above):")
        for name, values in s["all_rounds"].items():
            if values:
                lines.append(f"  {name:<22} " + ", ".join(f"{v:,.0f}" for v in values))
        lines.append("all rounds, µs CPU/event (median shown above):")
        for name, values in s["cpu_us_per_event_rounds"].items():
            lines.append(f"  {name:<22} " + ", ".join(f"{v:.2f}" for v in values))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000, help="events for the comparison")
    p.add_argument(
        "--backlog", type=int, default=1_000_000, help="events for the big peak-RSS run (0: skip)"
    )
    p.add_argument(
        "--huge",
        action="store_true",
        help=f"also a {outbound_memory.HUGE_BACKLOG:,}-event peak-RSS run (target "
        f"{outbound_memory.HUGE_LIMIT_MIB} MiB; ~10 minutes)",
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds of the comparison (median shown)"
    )
    p.add_argument(
        "--no-queue-raised", action="store_true", help="skip the official client with a big queue"
    )
    p.add_argument(
        "--window-s", type=float, default=300, help="follow-run window for RSS over time (0: skip)"
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
        "runs": {
            "cli": [],
            "ours": [],
            "ours_no_logs": [],
            "floor": [],
            "official_default": [],
            "official_tuned": [],
        },
    }
    standin = None
    try:
        print(f"workdir {workdir}", flush=True)
        print(f"seeding {args.events:,} events (not timed) ...", flush=True)
        store = seed_store(workdir / "loyalty.db", args.events)
        empty = seed_store(workdir / "empty.db", 0)
        raw["seed"] = {"events": store}
        print(f"  {store['seed_s']:.1f} s", flush=True)
        standin = Standin(workdir)
        print(f"stand-in on {standin.url} (pid {standin.proc.pid})", flush=True)
        if not args.no_queue_raised:
            raw["runs"]["official_queue_raised"] = []
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_}/{args.repeat}", flush=True)
            r = cli(standin, store, empty, workdir, f"cli-{round_}", args.timeout)
            raw["runs"]["cli"].append(r)
            print(
                f"  ours, segment-sync CLI   {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s (process {r['process_s']:.2f} s - empty run "
                f"{r['startup_s']:.2f} s)  stand-in core busy {r['standin_core_busy']:.0%}  "
                f"verified={r['verified']}",
                flush=True,
            )
            r = ours(standin, store, workdir, f"ours-{round_}", args.timeout)
            raw["runs"]["ours"].append(r)
            print(
                f"  ours                     {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  peak RSS {_mb(r['peak_rss'])}  "
                f"verified={r['verified']} {'; '.join(r['problems'])}",
                flush=True,
            )
            r = ours(standin, store, workdir, f"ours-no-logs-{round_}", args.timeout, no_logs=True)
            raw["runs"]["ours_no_logs"].append(r)
            print(
                f"  ours, no logging         {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  {_us(r)}  verified={r['verified']}",
                flush=True,
            )
            r = floor(standin, store, workdir, f"floor-{round_}", args.timeout)
            raw["runs"]["floor"].append(r)
            print(
                f"  floor (naive serial)     {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  {_us(r)}  verified={r['verified']}",
                flush=True,
            )
            r = official(standin, store, workdir, f"official-default-{round_}", args.timeout)
            raw["runs"]["official_default"].append(r)
            print(
                f"  official (default)       {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  delivered {r['delivered']:,}, dropped {r['dropped']:,}",
                flush=True,
            )
            if not args.no_queue_raised:
                tag = f"official-queue-raised-{round_}"
                queue = args.events + 1
                r = official(standin, store, workdir, tag, args.timeout, max_queue_size=queue)
                raw["runs"]["official_queue_raised"].append(r)
                print(
                    f"  official (queue raised)  {r['events_per_s']:>9,.0f} ev/s  "
                    f"{r['elapsed_s']:.2f} s  delivered {r['delivered']:,}, "
                    f"dropped {r['dropped']:,}",
                    flush=True,
                )
            tuned = {"upload_size": 2500, "thread": 2, "max_queue_size": args.events + 1}
            r = official(standin, store, workdir, f"official-tuned-{round_}", args.timeout, **tuned)
            raw["runs"]["official_tuned"].append(r)
            print(
                f"  official (tuned)         {r['events_per_s']:>9,.0f} ev/s  "
                f"{r['elapsed_s']:.2f} s  delivered {r['delivered']:,}, dropped {r['dropped']:,}",
                flush=True,
            )
        print("a request body's log row against sending it ...", flush=True)
        raw["log_row"] = log_row(standin, workdir, args.timeout)
        if args.backlog:
            raw["memory"] = memory(standin, args, workdir)
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
    met = summary["ratio_met"] and summary["cli_verified"] and summary["ours_verified"]
    met = met and summary["floor_ratio_met"] and summary["cpu_met"] and summary["floor_verified"]
    met = met and summary.get("log_row_met", True)
    if "memory" in summary:
        mem = summary["memory"]
        met = met and outbound_memory.met(mem) and summary["memory_verified"]
        met = met and summary.get("window", {}).get("flat", True)
    if not met:
        print("MISS: at least one target above is MISSED (or a run was not verified)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
