"""Ingest into an unthrottled Antavo, side by side with its floor and the 10,000 ev/s target.

    .venv/bin/python bench/ingest.py [--events 50000] [--rounds 2] [--profile ours.txt]

One command, one Antavo stand-in process (no rate limit). Each round fills a fresh SQLite buffer
with N track events (not timed) and runs, in alternating order (ours, floor, floor, ours, ...):

- ours: `InboundIngest.run` in a child process (bench/inbound.py's ingest child: the "Loyalty
  events" mapping, durable Parquet logs, leases, marks), verified as bench/inbound.py verifies it;
- the floor: the same job done plainly by a serial script (bench/ingest_floor.py): read the pending
  rows, orjson each payload, build the same Antavo event, POST 50 a request, Escher-signed, over one
  keep-alive connection, mark each request's items done in one UPDATE; no logs, no leases.

Each side is pooled over its rounds (events over summed seconds). Target: ours >= 10,000 ev/s
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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=2, help="rounds of ours and the floor")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--profile", type=Path, help="also run ours under py-spy into this file")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="segment-sync-bench-ingest-"))
    ours: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    antavo = inbound.Service(
        "antavo", ["segment_sync.standins.antavo", "--stack", inbound.STACK], workdir
    )
    try:
        for n in range(args.rounds):
            order = ("ours", "floor") if n % 2 == 0 else ("floor", "ours")
            for side in order:
                tag = f"{side}-{n}"
                if side == "ours":
                    r = inbound.run_ingest(
                        antavo, workdir, tag, args.events, inbound.UNLIMITED_PER_MINUTE, 60, args
                    )
                    ours.append(r)
                    note = "; ".join(r["problems"])
                else:
                    r = run_floor(antavo, workdir, tag, args.events, args.timeout)
                    floors.append(r)
                    note = "" if r["verified"] else f"registered {r['registered']:,}"
                print(
                    f"  {tag}: {r['events_per_s']:,.0f} ev/s, {r['run_cpu_s']:.2f} CPU-s "
                    f"(stand-in {r['standin_cpu_s']:.2f}), "
                    f"{r['elapsed_s']:.2f} s {note}",
                    flush=True,
                )
        if args.profile:
            profile_ours(antavo, workdir, args.events, args.profile)
    finally:
        antavo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    ours_eps, ours_us, ours_standin = pooled(ours)
    floor_eps, floor_us, floor_standin = pooled(floors)
    verified = all(r["verified"] for r in ours) and all(r["verified"] for r in floors)
    met = ours_eps >= TARGET_EPS and verified
    print()
    print(f"bench/ingest.py --events {args.events} --rounds {args.rounds}; {os.cpu_count()} CPUs")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f}")
    print(f"{'':34}{'ev/s':>10}{'CPU µs/ev':>12}{'stand-in µs/ev':>16}")
    print(f"{'ours (InboundIngest.run)':34}{ours_eps:>10,.0f}{ours_us:>12.1f}{ours_standin:>16.1f}")
    print(
        f"{'floor (serial, no logs)':34}{floor_eps:>10,.0f}{floor_us:>12.1f}{floor_standin:>16.1f}"
    )
    print(f"{'ours / floor':34}{ours_eps / floor_eps:>9.2f}x{ours_us / floor_us:>11.2f}x")
    print(f"{'target':34}{TARGET_EPS:>10,}   {'PASS' if met else 'MISS'}")
    print(f"verified (every event registered once, every item done): {verified}")
    if not met:
        print(f"MISS ingest {TARGET_EPS:,} ev/s: {ours_eps:,.0f} ev/s (floor {floor_eps:,.0f})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
