"""DuckDB's own shell from PyPI (`duckdb-cli`, a dev dependency: .venv/bin/duckdb) reads the
analysts' file the pinned DuckDB wrote, though PyPI serves an older CLI than the Python package."""

from __future__ import annotations

import csv
import importlib.util
import io
import subprocess
import sys

from segment_sync.logs import logbook
from segment_sync_tests.logs import real_run_logs as runs
from segment_sync_tests.logs.real_run_logs import RealRunLogs

real_run_logs = runs.real_run_logs  # the fixture
TIMEOUT_S = 120.0


def duckdb_shell(*args: str) -> subprocess.CompletedProcess:
    """`duckdb ARGS` from the duckdb-cli package (`python -m duckdb_cli` is the same program)."""
    assert importlib.util.find_spec("duckdb_cli"), "duckdb-cli is not installed: run make install"
    return subprocess.run(
        [sys.executable, "-m", "duckdb_cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_duckdbs_cli_reads_the_analysts_file_of_real_runs(real_run_logs: RealRunLogs) -> None:
    shared = real_run_logs.logs_dir / "segment_sync.duckdb"  # the first run created it
    query = (
        "SELECT event_type, status_code, message_count FROM outbound_log ORDER BY timestamp;"
        "SELECT type, requests, errors FROM daily_summary WHERE direction = 'inbound' "
        "AND type IS NOT NULL ORDER BY type;"
    )
    shell = duckdb_shell("-readonly", "-csv", "-noheader", str(shared), "-c", query)

    assert shell.returncode == 0, shell.stderr
    with logbook.open(logs_dir=real_run_logs.logs_dir) as logs:
        expected = logs.sql(query.split(";")[0]).values.tolist()
        expected += logs.sql(query.split(";")[1]).values.tolist()
    rows = [
        [int(v) if v.isdigit() else v for v in row] for row in csv.reader(io.StringIO(shell.stdout))
    ]
    assert rows == expected
    assert len(rows) == 3 + 2
