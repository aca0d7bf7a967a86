"""Ctrl-C while a logs command reads every log file to name a damaged one (or to check them):
one line and exit 130 from a one-shot command, the prompt back in `logs sql`'s interactive
session; never a traceback. Real processes, real SIGINT to the process group.

How the process is caught inside the scan, without timing: a FIFO named like a data file. DuckDB's
glob lists regular files only, so the views never open it; the scan does, and waits in open(2)
until a writer comes (the kernel shows it as `wait_for_partner`). The signal goes then, and the
test writes a few bytes so that read fails and the scan goes on."""

from __future__ import annotations

import os
import pty
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segment_sync_tests.cli.test_logs_check import logs_with_files
from segment_sync_tests.cli.test_logs_sql_program import Terminal

DEADLINE_S = 120.0  # a safety net on a busy machine, not a speed check
QUERY = "SELECT count(*) AS requests FROM outbound_log"


def damage_footer(path: Path) -> None:
    """Flip the first bytes of a Parquet file's footer: DuckDB's error then names no file, so
    every log file is read to find the damaged one."""
    data = bytearray(path.read_bytes())
    start = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))


def held_logs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Settings over healthy logs, a data file to damage and the FIFO the scan will wait on."""
    settings, _, files = logs_with_files(tmp_path)
    return settings, files[0], files[0].parent / "zz-held.parquet"


def wait_in_scan(process: subprocess.Popen, fifo: Path) -> None:
    """Return once `process` waits to open `fifo` (the damaged-file scan reached it)."""
    deadline = time.monotonic() + DEADLINE_S
    while Path(f"/proc/{process.pid}/wchan").read_text() != "wait_for_partner":
        assert process.poll() is None, f"it ended before opening {fifo}"
        assert time.monotonic() < deadline, f"it never opened {fifo}"
        time.sleep(0.05)


def release(fifo: Path) -> None:
    """Let the open of `fifo` that waits return, and its read fail (not Parquet); the FIFO is
    gone for any later open."""
    writer = os.open(fifo, os.O_WRONLY)  # a reader waits: this returns at once, and so does it
    fifo.unlink()
    try:
        os.write(writer, b"not parquet")
    except BrokenPipeError:  # the reader gave up on it already
        pass
    finally:
        os.close(writer)


def ctrl_c_in_scan(process: subprocess.Popen, fifo: Path) -> None:
    wait_in_scan(process, fifo)
    os.killpg(os.getpgid(process.pid), signal.SIGINT)  # as a terminal's Ctrl-C does
    release(fifo)


@pytest.mark.parametrize(
    "command",
    [["sql", QUERY], ["check"], ["check", "--quarantine"], ["outbound"], ["db"]],
    ids=lambda command: "-".join(command[:2]).replace(QUERY, "query"),
)
def test_ctrl_c_while_a_logs_command_reads_every_log_file_is_one_line_and_exit_130(
    tmp_path, command
):
    settings, damaged, fifo = held_logs(tmp_path)
    damage_footer(damaged)
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", "logs", *command, "--settings", str(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ctrl_c_in_scan(process, fifo)
    output, _ = process.communicate(timeout=DEADLINE_S)

    assert "Traceback" not in output, output
    assert process.returncode == 130, output
    assert output.strip().splitlines()[-1] == "interrupted (Ctrl-C)", output
    assert damaged.exists()  # nothing was moved to quarantine/


class OwnTerminal(Terminal):
    """The prompt in its own process group (and session), as a shell starts a job: Ctrl-C
    reaches it and not the test."""

    def __init__(self, settings: Path) -> None:
        self.primary, secondary = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segment_sync.cli", "logs", "sql", "--settings", str(settings)],
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env={**os.environ, "TERM": "dumb"},
            start_new_session=True,
        )
        os.close(secondary)
        self.seen = ""


def test_ctrl_c_while_the_prompt_names_a_damaged_file_goes_back_to_the_prompt(tmp_path):
    settings, damaged, fifo = held_logs(tmp_path)
    terminal = OwnTerminal(settings)
    try:
        terminal.wait_for("logs> ")
        damage_footer(damaged)  # after the views opened: the query meets it
        os.mkfifo(fifo)
        terminal.type(f"{QUERY};\r")
        ctrl_c_in_scan(terminal.process, fifo)
        interrupted = terminal.wait_for("logs> ")
        terminal.type("SELECT 41 + 1 AS answer;\r")
        answer = terminal.wait_for("logs> ")
        terminal.type("\x04")  # Ctrl-D
    finally:
        code = terminal.close()

    assert "Traceback" not in interrupted and "^C" in interrupted, interrupted
    assert "42" in answer, answer
    assert code == 0
