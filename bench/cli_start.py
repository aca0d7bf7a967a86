"""CLI start-up: wall time and peak RSS of `segment-sync --help`, every group's and command's
`--help`, `settings check` and `logs outbound`, each a new process as a person types it.

    .venv/bin/python bench/cli_start.py [--runs 10] [--before b9a94a5 | --no-before]

One run: every command is started `--runs` times, in turn (A B C ... A B C ...), so a change in
the machine's load moves every row alike. Beside them, in the same rotation, the floor:
`python -c pass` (the interpreter and site) and `python -c "import click"`. Wall time is a
monotonic clock around the whole process (start, imports, output, exit); CPU is the kernel's
accounting of the finished child (`os.wait4`), peak RSS what GNU time (`/usr/bin/time -f %M`, every
row runs under it when installed) reports for it. `before` runs the headline commands from
the tree of commit b9a94a5, the last without lazy commands (`git archive` into a temporary
directory, put first on PYTHONPATH). `settings check` reads the demo settings
(data/segment_sync.example.yaml); `logs outbound` queries an empty, laid-out logs.dir.

Target: the median wall time of every `--help` at most 0.3 s. Exits 1 on a MISS. The load
average is printed before and after; figures go to bench/results/cli_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_WALL_S = 0.3
BEFORE_COMMIT = "b9a94a5"
DEMO_SETTINGS = ROOT / "data" / "segment_sync.example.yaml"
CLI = Path(sys.executable).with_name("segment-sync")
# GNU time forks the command from its own small image, so its peak RSS is the command's alone.
GNU_TIME = next((p for p in (Path("/usr/bin/time"),) if p.exists()), None)
# The commands also run from the `before` tree: the CLI's own, then those with settings (below).
BEFORE_HELP = ("", "run", "logs outbound")


@dataclass
class Row:
    """One command, started `runs` times."""

    label: str
    argv: list[str]
    target: bool  # a --help: held to TARGET_WALL_S
    env: dict[str, str] = field(default_factory=dict)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    failed: str | None = None

    def once(self, workdir: Path) -> None:
        """Start the command, wait for it, keep its wall time, CPU and peak RSS."""
        peak = workdir / "peak_rss_kib"
        argv = [str(GNU_TIME), "-f", "%M", "-o", str(peak), *self.argv] if GNU_TIME else self.argv
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env={**os.environ, **self.env},
            )
            _, status, usage = os.wait4(process.pid, 0)
            self.wall.append(time.perf_counter() - started)
            code = os.waitstatus_to_exitcode(status)
            self.cpu.append(usage.ru_utime + usage.ru_stime)  # the reaped command's included
            kib = int(peak.read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
            self.rss_mib.append(kib / 1024)
            if code != 0 and self.failed is None:
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip()[-300:]
                self.failed = f"exit {code}: {said}"

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.rss_mib.clear()

    def median(self, values: list[float]) -> float:
        return statistics.median(values)

    def verdict(self) -> str:
        if self.failed:
            return "FAILED"
        if not self.target:
            return "-"
        return "PASS" if self.median(self.wall) <= TARGET_WALL_S else "MISS"

    def summary(self) -> dict:
        return {
            "label": self.label,
            "argv": self.argv,
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "peak_rss_mib": self.rss_mib,
            "median_wall_s": self.median(self.wall),
            "median_cpu_s": self.median(self.cpu),
            "median_peak_rss_mib": self.median(self.rss_mib),
            "verdict": self.verdict(),
            "failed": self.failed,
        }


# Prints every group and command of the CLI ('' is `segment-sync` itself), from the click tree.
WALK = """
import json, click
from segment_sync.cli import main
paths = []
def walk(command, path):
    paths.append(" ".join(path))
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            walk(command.get_command(ctx, name), (*path, name))
walk(main, ())
print(json.dumps(paths))
"""


def every_command_path() -> list[str]:
    """Every command path, read in a child: this process stays small (see rss_floor_mib)."""
    walked = subprocess.run([sys.executable, "-c", WALK], capture_output=True, check=True)
    return json.loads(walked.stdout)


def rss_floor_mib() -> float:
    """Without GNU time: this process's peak RSS. Linux counts a child's memory from its fork,
    before it execs the command, so no child's peak reads below this."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cli_argv(*args: str) -> list[str]:
    """The command line a person types: the installed `segment-sync` with `args`."""
    start = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "segment_sync.cli"]
    return [*start, *args]


def label_of(path: str, suffix: str = "") -> str:
    return f"segment-sync {path} {suffix}".replace("  ", " ").strip()


def before_tree(ref: str, target: Path) -> tuple[Path | None, str]:
    """The package as it was at `ref`, extracted under `target`, or None and why not: git
    cannot find it, or it does not start in this environment (a dependency it had was dropped
    since, as tenacity was)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "segment_sync"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None, f"git cannot find {ref}"
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    probe = subprocess.run(
        cli_argv("--help"),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=False,
    )
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{ref} does not start here ({said})"
    return target, ""


def build_rows(workdir: Path, before: Path | None) -> list[Row]:
    logs_settings = workdir / "logs_settings.yaml"
    logs_settings.write_text(f"logs:\n  dir: {workdir / 'logs'}\n")
    (workdir / "logs").mkdir()
    commands = {
        "settings check": ["settings", "check", "--settings", str(DEMO_SETTINGS)],
        "logs outbound": ["logs", "outbound", "--settings", str(logs_settings)],
    }
    rows = [
        Row("python -c pass", [sys.executable, "-c", "pass"], False),
        Row('python -c "import click"', [sys.executable, "-c", "import click"], False),
    ]
    for path in every_command_path():
        rows.append(Row(label_of(path, "--help"), cli_argv(*path.split(), "--help"), True))
    for name, args in commands.items():
        rows.append(Row(label_of(name), cli_argv(*args), False))
    if before is not None:
        old = {"PYTHONPATH": str(before)}
        for path in BEFORE_HELP:
            label = f"before: {label_of(path, '--help')}"
            rows.append(Row(label, cli_argv(*path.split(), "--help"), False, env=old))
        for name, args in commands.items():
            rows.append(Row(f"before: {label_of(name)}", cli_argv(*args), False, env=old))
    return rows


def print_table(rows: list[Row]) -> None:
    print(
        f"{'command':<52} {'wall s (median; min-max)':>26} {'CPU s':>6} {'peak RSS MiB':>13}"
        f"  {'≤ 0.3 s'}"
    )
    for row in rows:
        wall = row.wall
        spread = f"{statistics.median(wall):.3f} ({min(wall):.3f}-{max(wall):.3f})"
        print(
            f"{row.label:<52} {spread:>26} {statistics.median(row.cpu):>6.3f} "
            f"{statistics.median(row.rss_mib):>13.1f}  {row.verdict()}"
            + (f"  {row.failed}" if row.failed else "")
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--before", default=BEFORE_COMMIT, help="git ref to compare with")
    parser.add_argument("--no-before", action="store_true")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "cli_start.json"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        before = None
        if not args.no_before:
            (workdir / "before").mkdir()
            before, why_not = before_tree(args.before, workdir / "before")
            if before is None:
                print(f"before: {why_not}; skipped", file=sys.stderr)
        rows = build_rows(workdir, before)
        for row in rows:  # untimed warm-up: page cache, .pyc files, the logs.dir layout
            row.once(workdir)
            row.reset()
        load_before = os.getloadavg()
        for _ in range(args.runs):
            for row in rows:
                row.once(workdir)
        load_after = os.getloadavg()
    print(
        f"{args.runs} runs each, in turn; {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after"
    )
    print_table(rows)
    if GNU_TIME:
        print(f"peak RSS as {GNU_TIME} -f %M reports it; every row runs under it, the floor too")
    else:
        print(
            f"peak RSS cannot read below this script's own, {rss_floor_mib():.1f} MiB (a "
            "child's is counted from its fork): a figure at it means at most that"
        )
    targeted = [r for r in rows if r.target]
    missed = [r for r in targeted if r.verdict() != "PASS"]
    worst = max(targeted, key=lambda r: statistics.median(r.wall))
    print(
        f"every --help ({len(targeted)} commands) ≤ {TARGET_WALL_S} s median wall: "
        f"{'MISS' if missed else 'PASS'} (slowest {worst.label}: "
        f"{statistics.median(worst.wall):.3f} s)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "runs": args.runs,
                "cpus": os.cpu_count(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "before_ref": None if before is None else args.before,
                "target_wall_s": TARGET_WALL_S,
                "rows": [r.summary() for r in rows],
            },
            indent=2,
        )
    )
    failed = [r for r in rows if r.failed]
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
