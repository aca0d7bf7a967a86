"""`segment-sync logs sql` as a program: its prompt on a real terminal, and what it imports."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from segment_sync.logs.read_only import VIEWS
from segment_sync_tests.logs import real_run_logs as runs
from segment_sync_tests.logs.real_run_logs import RealRunLogs

real_run_logs = runs.real_run_logs  # the fixture
DEADLINE_S = 120.0  # a safety net on a busy machine, not a speed check


# ---------------------------------------------------------------------------------------------
# The interactive prompt, on a real terminal
# ---------------------------------------------------------------------------------------------


class Terminal:
    """`segment-sync logs sql` started on a pseudo-terminal, read until a text appears."""

    def __init__(self, settings: Path) -> None:
        self.primary, secondary = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segment_sync.cli", "logs", "sql", "--settings", str(settings)],
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env={**os.environ, "TERM": "dumb"},
        )
        os.close(secondary)
        self.seen = ""

    def type(self, text: str) -> None:
        os.write(self.primary, text.encode())

    def wait_for(self, text: str) -> str:
        """Everything read until `text` appears (and is consumed)."""
        deadline = time.monotonic() + DEADLINE_S
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; saw {self.seen!r}"
            ready, _, _ = select.select([self.primary], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.primary, 4096)
                except OSError:  # the terminal closed: the process ended
                    chunk = b""
                assert chunk, f"the prompt ended before {text!r}; saw {self.seen!r}"
                self.seen += chunk.decode(errors="replace")
        before, self.seen = self.seen.split(text, 1)
        return before + text

    def close(self) -> int:
        try:
            return self.process.wait(timeout=DEADLINE_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            os.close(self.primary)


def test_on_a_terminal_with_no_query_an_interactive_prompt_opens(
    real_run_logs: RealRunLogs,
) -> None:
    terminal = Terminal(real_run_logs.settings)
    try:
        terminal.wait_for("logs> ")
        terminal.type("SELECT status, count(*) AS n\r")
        terminal.wait_for("...> ")
        terminal.type("FROM inbound_log GROUP BY ALL ORDER BY status;\r")
        answer = terminal.wait_for("logs> ")
        terminal.type("SELECT nope;\r")
        error = terminal.wait_for("logs> ")
        terminal.type(".tables\r")
        tables = terminal.wait_for("logs> ")
        terminal.type("\x04")  # Ctrl-D
    finally:
        code = terminal.close()

    assert re.search(r"error\s+1\r?\n.*skipped\s+1\r?\n.*success\s+1", answer, re.DOTALL)
    assert 'Error: Binder Error: Referenced column "nope" was not found' in error
    assert all(view in tables for view in VIEWS)
    assert code == 0


# ---------------------------------------------------------------------------------------------
# Start-up cost
# ---------------------------------------------------------------------------------------------

IMPORTS_OF_THE_LOGS_COMMANDS = """
import sys, types
# Skip segment_sync/cli/__init__.py (it imports every command group) to see these modules alone.
package = types.ModuleType("segment_sync.cli")
package.__path__ = [sys.argv[1]]
sys.modules["segment_sync.cli"] = package
import segment_sync.cli.logs, segment_sync.cli.logs_sql, segment_sync.cli.sql_output
print(sorted(m for m in ("duckdb", "pandas", "pyarrow") if m in sys.modules))
"""


def test_the_logs_commands_import_neither_duckdb_nor_pandas_until_they_run() -> None:
    import segment_sync.cli

    folder = str(Path(segment_sync.cli.__file__).parent)
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF_THE_LOGS_COMMANDS, folder],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == "[]\n"


def test_logs_sql_help_does_not_import_pandas() -> None:
    shown = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "segment_sync.cli", "logs", "sql", "--help"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert shown.returncode == 0 and "Views:" in shown.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in shown.stderr.splitlines()}
    assert "segment_sync.cli.logs_sql" in imported
    assert not {"pandas", "segment_sync.logs.logbook", "segment_sync.logs.read_only"} & imported
