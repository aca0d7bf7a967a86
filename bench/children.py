"""Run one measured benchmark child process: config in, JSON result and rusage out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_S = 0.05


def run_child(
    script: Path,
    mode: str,
    cfg: dict[str, Any],
    workdir: Path,
    timeout_s: float,
    env: dict[str, str],
    cwd: Path,
    on_poll: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], Any]:
    """`python script _child mode cfg.json`; returns (its result JSON, its rusage).

    `on_poll(pid)` runs every POLL_S while the child lives (e.g. to sample its RSS).
    """
    tag = cfg["tag"]
    cfg_path = workdir / f"{tag}.json"
    cfg["result_path"] = str(workdir / f"{tag}.result.json")
    cfg_path.write_text(json.dumps(cfg))
    log_path = workdir / f"{tag}.log"
    cmd = [sys.executable, str(script), "_child", mode, str(cfg_path)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if on_poll:
            on_poll(proc.pid)
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise RuntimeError(f"{tag}: timed out after {timeout_s:.0f} s; see {log_path}")
        time.sleep(POLL_S)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{tag}: child exited {code}; {log_path}:\n{tail}")
    return json.loads(Path(cfg["result_path"]).read_text()), usage
