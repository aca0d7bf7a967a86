"""What each command imports before it answers: `--help` nothing but click, `settings check` and
`logs outbound` none of the sync's heavy packages (their speed is measured in bench/cli_start.py)."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import segment_sync
from segment_sync_tests.cli.command_tree import EVERY_COMMAND

DEADLINE_S = 120.0  # a safety net on a busy machine, not a speed check
EXAMPLE_SETTINGS = Path(segment_sync.__file__).parents[1] / "data" / "segment_sync.example.yaml"
# What the sync imports and these commands must not: Dagster, the log engines, HTTP clients,
# database drivers, the stand-ins' web server.
SYNC_PACKAGES = frozenset(
    {"dagster", "duckdb", "pyarrow", "pandas", "numpy", "httpx", "sqlalchemy", "psycopg",
     "escherauth", "uvicorn", "starlette", "orjson"}
)  # fmt: skip


# Runs `python -m segment_sync.cli ARGS` as the command line does; at exit (sys.exit included)
# writes the names of every module then loaded to the file named by the first argument.
RUNNER = """
import atexit, runpy, sys
out, sys.argv = sys.argv[1], ["segment-sync", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("segment_sync.cli", run_name="__main__", alter_sys=True)
"""


def imports_of(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the command line with ARGS in a new interpreter; its result and every module loaded."""
    out = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    return done, set(out.read_text().split())


@cache
def interpreter_start() -> frozenset[str]:
    """What this interpreter has loaded for `pass` (site, the editable install's finder)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print(*sys.modules)"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    return frozenset(done.stdout.split())


def packages(modules: set[str]) -> set[str]:
    """The top-level packages of `modules` that are neither the standard library nor loaded
    for `pass`."""
    tops = {m.split(".")[0] for m in modules - interpreter_start()}
    return tops - set(sys.stdlib_module_names)


@pytest.mark.parametrize("path", sorted(EVERY_COMMAND))
def test_help_imports_no_package_but_click_and_reads_no_settings(path: str, tmp_path: Path) -> None:
    """Every --help, of every group and command: no third-party package but click, and neither
    the settings (pydantic) nor the factory's wiring, which wait for a command to run."""
    done, modules = imports_of(tmp_path, *path.split(), "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert packages(modules) <= {"click", "segment_sync"}
    assert {"segment_sync.settings", "segment_sync.factory"} & modules == set()


def test_settings_check_imports_none_of_the_sync_s_packages(tmp_path: Path) -> None:
    done, modules = imports_of(tmp_path, "settings", "check", "--settings", str(EXAMPLE_SETTINGS))
    assert done.returncode == 0 and "settings OK" in done.stdout, done.stderr[-2000:]
    assert packages(modules) & SYNC_PACKAGES == set()


def test_settings_without_mappings_are_checked_without_the_trigger_parser(
    write_settings, tmp_path: Path
) -> None:
    done, modules = imports_of(tmp_path, "settings", "check", "--settings", str(write_settings()))
    assert done.returncode == 0 and "settings OK" in done.stdout, done.stderr[-2000:]
    assert "lark" not in packages(modules)
    assert packages(modules) & SYNC_PACKAGES == set()


def test_logs_outbound_imports_no_dagster_http_client_database_driver_or_pandas(
    write_settings, tmp_path: Path
) -> None:
    path = write_settings()
    (tmp_path / "logs").mkdir()
    # The first query lays out logs.dir (its schema files), as a sync's first run does;
    # pyarrow imports pandas while writing them. Measured: the queries after it.
    imports_of(tmp_path, "logs", "outbound", "--settings", str(path))
    done, modules = imports_of(tmp_path, "logs", "outbound", "--settings", str(path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No matching outbound requests." in done.stdout
    imported = packages(modules)
    assert "duckdb" in imported  # what it queries with
    assert imported & {"dagster", "httpx", "sqlalchemy", "psycopg", "escherauth", "pandas"} == set()


def test_logs_check_help_names_the_folder_logs_check_moves_files_into() -> None:
    """The help spells the folder out (naming the constant would import DuckDB and Arrow)."""
    from segment_sync.cli.logs_check import logs_check
    from segment_sync.logs import damaged

    (option,) = [p for p in logs_check.params if p.name == "move"]
    assert f"logs.dir's {damaged.QUARANTINE_DIR}/ folder" in (option.help or "")
