"""A second, real process holding tables' maintenance locks (a run's merge, another maintenance
run, or a wedged one) until the block ends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD = """
import sys
from contextlib import ExitStack
from segment_sync.logs.merge import maintenance_lock
with ExitStack() as held:
    for table in sys.argv[2:]:
        held.enter_context(maintenance_lock(sys.argv[1], table, timeout_s=0))
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_by_another_process(logs_dir: Path | str, *tables: str) -> Iterator[None]:
    """Holds the maintenance locks of `tables` under `logs_dir` in another process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(logs_dir), *tables],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate(input="", timeout=30)
