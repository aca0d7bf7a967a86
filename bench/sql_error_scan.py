"""What a mistake in `logs sql` costs to explain: every log file read (what the merge of
sql-explain did for an error naming the user's own missing file) against what it does now.

    .venv/bin/python bench/sql_error_scan.py [files]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from segment_sync.logs import damaged
from segment_sync.logs.read_only import damaged_file_behind, open_read_only
from segment_sync.logs.store import LogWriter
from segment_sync_tests.cli.test_logs_commands import outbound_row

MISTAKES = [
    "SELECT * FROM read_parquet('nope.parquet')",
    "SELECT * FROM read_parquet('/etc/hostname')",
]


def main(files: int) -> None:
    """Time both ways of explaining each mistake over `files` log files of ~0.5 MB."""
    logs_dir = Path(tempfile.mkdtemp()) / "logs"
    writer = LogWriter(logs_dir)
    body = "".join(f"{n:08x}" for n in range(20_000))
    for f in range(files):
        rows = [outbound_row(f"b-{f}-{n}", 9, request_body=body + str(n)) for n in range(50)]
        writer.write("outbound_log", rows)
    size = sum(path.stat().st_size for path in logs_dir.rglob("*.parquet"))
    con = open_read_only(logs_dir)
    print(f"load average {os.getloadavg()}; {files} files, {size / 1e6:.1f} MB")
    for sql in MISTAKES:
        try:
            con.execute(sql).fetchall()
        except duckdb.Error as exc:
            error = exc
        started = time.perf_counter()
        damaged.explain(error) or damaged.explain(error, logs_dir)  # the merge's way
        every_file = time.perf_counter() - started
        started = time.perf_counter()
        damaged_file_behind(error, logs_dir)
        now = time.perf_counter() - started
        print(f"{sql!r}: every file read {every_file:.2f} s, now {now:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
