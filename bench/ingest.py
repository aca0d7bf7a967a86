"""Ingest into an unthrottled Antavo, side by side with its floor and the 10,000 ev/s target.

    .venv/bin/python bench/ingest.py [--events 50000] [--rounds 2] [--baseline REV] [--profile F]

One command, one Antavo stand-in process (no rate limit). Each round fills a fresh SQLite buffer
with N track events (not timed) and runs, in alternating order (ours, floor, floor, ours, ...):

- ours: `InboundIngest.run` in a child process (bench/inbound.py's ingest child: the "Loyalty
  events" mapping, durable Parquet logs, leases, marks), verified as bench/inbound.py verifies it;
- the floor: the same job done plainly by a serial script (bench/ingest_floor.py): read the pending
  rows, orjson each payload, build the same Antavo event, POST 50 a request, Escher-signed, over one
  keep-alive connection, mark each request's items done in one UPDATE; no logs, no leases.

`--baseline REV` also runs a git revision's ingest (its segment_sync and bench/inbound.py, exported
with `git archive`) as "before", in the same rotation. Each side is pooled over its rounds (events over summed seconds). Target: ours >= 10,000 ev/s
(issue 26 item 5); a miss prints a MISS line and exits 1, as a failed check does. `--profile`
runs ours once more under py-spy (raw format, for flame graphs / top frames).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import children  # noqa: E402
import inbound  # noqa: E402  (Service, fill_buffer, run_ingest: the ingest bench/inbound.py runs)

TARGET_EPS = inbound.INGEST_TARGET_EPS


def run_floor(antavo: inbound.Service, workdir: Path, tag: str, events: int, timeout: float):
    """The floor over a fresh buffer of `events`; verified by the stand-in's count."""
    run_dir = workdir / tag
    run_dir.mkdir()
    db = run_dir / "inbound.db"
    inbound.fill_buffer(f"sqlite:///{db}", events, tag)
    antavo.post("/_standin/reset")
    cfg = {"tag": tag, "antavo_url": antavo.url, "db": str(db), "stack": inbound.STACK}
    script = ROOT / "bench" / "ingest_floor.py"
    cpu_before = antavo.cpu_s()
    result, usage = children.run_child(
        script, "floor", cfg, workdir, timeout, inbound.bench_env(), ROOT
    )
    result["standin_cpu_s"] = antavo.cpu_s() - cpu_before
    stats = antavo.get("/_standin/stats")
    result["child_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["events"] = events
    result["registered"] = stats["events_registered"]
    result["events_per_s"] = stats["events_registered"] / result["elapsed_s"]
    result["verified"] = stats["events_registered"] == events and result["done"] == events
    return result


def profile_ours(antavo: inbound.Service, workdir: Path, events: int, out: Path) -> None:
    """Ours once more under py-spy (the child's cfg as bench/inbound.py writes it)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy not found: no profile", flush=True)
        return
    run_dir = workdir / "profile"
    run_dir.mkdir()
    buffer_url = f"sqlite:///{run_dir / 'inbound.db'}"
    inbound.fill_buffer(buffer_url, events, "profile")
    antavo.post("/_standin/reset")
    cfg = {
        "tag": "profile",
        "run_id": "bench-profile",
        "antavo_url": antavo.url,
        "buffer_url": buffer_url,
        "logs_dir": str(run_dir / "logs"),
        "rate_limit_per_minute": inbound.UNLIMITED_PER_MINUTE,
        "result_path": str(workdir / "profile.result.json"),
    }
    cfg_path = workdir / "profile.json"
    cfg_path.write_text(__import__("json").dumps(cfg))
    cmd = [spy, "record", "-r", "250", "-f", "raw", "-o", str(out), "--"]
    cmd += [sys.executable, str(ROOT / "bench" / "inbound.py"), "_child", "ingest", str(cfg_path)]
    subprocess.run(cmd, cwd=ROOT, env=inbound.bench_env(), check=True)
    print(f"profile written to {out}", flush=True)


def pooled(runs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(events/s over summed elapsed time, CPU µs per event in the run (imports not counted), the
    stand-in's) of one side."""
    events = sum(r["events"] for r in runs)
    eps = events / sum(r["elapsed_s"] for r in runs)
    cpu = sum(r["run_cpu_s"] for r in runs) / events * 1e6
    return eps, cpu, sum(r["standin_cpu_s"] for r in runs) / events * 1e6


def export(rev: str, into: Path) -> Path:
    """bench/inbound.py of git revision `rev`, beside that revision's segment_sync package."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "segment_sync", "bench"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "bench" / "inbound.py"


def run_side(side: str, n: int, antavo, workdir: Path, args, base: Path | None) -> dict:
    """One run of `ours`, `before` (the baseline's code) or `floor`, each on a fresh buffer."""
    tag = f"{side}-{n}"
    if side == "floor":
        r = run_floor(antavo, workdir, tag, args.events, args.timeout)
        r["note"] = "" if r["verified"] else f"registered {r['registered']:,}"
    else:
        script = base if side == "before" else None
        per_minute = inbound.UNLIMITED_PER_MINUTE
        r = inbound.run_ingest(antavo, workdir, tag, args.events, per_minute, 60, args, script)
        r["note"] = "; ".join(r["problems"])
    print(
        f"  {tag}: {r['events_per_s']:,.0f} ev/s, {r['run_cpu_s']:.2f} CPU-s "
        f"(stand-in {r['standin_cpu_s']:.2f}), {r['elapsed_s']:.2f} s {r['note']}",
        flush=True,
    )
    return r


LABELS = {
    "ours": "ours (InboundIngest.run)",
    "before": "before: {rev}",
    "floor": "floor (serial, no logs)",
}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=2, help="rounds of ours and the floor")
    p.add_argument("--baseline", help="git revision whose ingest is measured too, as 'before'")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--profile", type=Path, help="also run ours under py-spy into this file")
    p.add_argument(
        "--max-in-flight",
        type=int,
        help="inbound.max_in_flight for ours (default: the setting's default; the baseline "
        "keeps its own default). A kill repeats at most this many requests of 50 events",
    )
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-bench-ingest-"))
    sides = ["ours", "floor", *(["before"] if args.baseline else [])]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    antavo = inbound.Service(
        "antavo", ["segment_sync.standins.antavo", "--stack", inbound.STACK], workdir
    )
    try:
        base = export(args.baseline, workdir / "base") if args.baseline else None
        for n in range(args.rounds):
            for side in sides if n % 2 == 0 else reversed(sides):
                runs[side].append(run_side(side, n, antavo, workdir, args, base))
        if args.profile:
            profile_ours(antavo, workdir, args.events, args.profile)
    finally:
        antavo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    figures = {side: pooled(rs) for side, rs in runs.items()}
    floor_eps, floor_us, _ = figures["floor"]
    verified = all(r["verified"] for rs in runs.values() for r in rs)
    ours_eps = figures["ours"][0]
    met = ours_eps >= TARGET_EPS and verified
    print()
    print(f"bench/ingest.py {' '.join(argv)}; {os.cpu_count()} CPUs, {args.events:,} events")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f}")
    print(f"{'':34}{'ev/s':>10}{'CPU µs/ev':>12}{'stand-in µs/ev':>16}{'/ floor':>9}")
    for side in ("ours", "before", "floor"):
        if side in figures:
            eps, us, standin = figures[side]
            label = LABELS[side].format(rev=args.baseline)
            print(f"{label:34}{eps:>10,.0f}{us:>12.1f}{standin:>16.1f}{eps / floor_eps:>8.2f}x")
    if "before" in figures:
        print(f"{'ours / before':34}{ours_eps / figures['before'][0]:>9.2f}x")
    print(f"{'target, ours':34}{TARGET_EPS:>10,}   {'PASS' if met else 'MISS'}")
    print(f"verified (every event registered once, every item done): {verified}")
    if not met:
        print(f"MISS ingest {TARGET_EPS:,} ev/s: {ours_eps:,.0f} ev/s (floor {floor_eps:,.0f})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
