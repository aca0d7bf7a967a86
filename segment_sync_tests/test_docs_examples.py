"""Every shell example of the quick start runs as written, so no documented command goes stale.

Each page's marked blocks (`docs_examples.py`) run in a folder laid out like a fresh checkout:
its `data/segment_sync.example.yaml`, and a `.venv/bin` whose `segment-sync` and `python` are
this checkout's. The one change to the text: the demo's fixed ports (8701-8703, 3000) become
free ones, in the commands and in the demo itself, so the test never takes a port another
process (or a running `make run`) holds. Blocks marked `skip` are not run; each says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from segment_sync.demo_env import DEMO_SECRETS
from segment_sync.standins.server import free_port
from segment_sync_tests.docs_examples import Example, examples

REPO = Path(__file__).resolve().parents[1]
QUICK_START_PAGES = ["README.md", "docs/getting-started.md"]
DEMO_PORTS = (8701, 8702, 8703, 3000)
SAFETY_NET_S = 300  # a demo that never gets ready, or a hung command, is killed
SEGMENT_SYNC = """#!{python}
import sys
import segment_sync.demo as demo
demo.SEGMENT_STANDIN_PORT, demo.ANTAVO_STANDIN_PORT, demo.RECEIVER_PORT, demo.DAGSTER_PORT = {ports}
demo.DAGSTER_UI = "http://127.0.0.1:{ports[3]}"
from segment_sync.cli import main
sys.exit(main())
"""


def checkout(root: Path, ports: dict[int, int]) -> Path:
    """A fresh checkout's layout in `root`: the example settings and a `.venv/bin`."""
    (root / "data").mkdir()
    example = (REPO / "data" / "segment_sync.example.yaml").read_text()
    (root / "data" / "segment_sync.example.yaml").write_text(on_ports(example, ports))
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    moved = tuple(ports[p] for p in DEMO_PORTS)
    (bin_dir / "segment-sync").write_text(SEGMENT_SYNC.format(python=sys.executable, ports=moved))
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return root


def on_ports(text: str, ports: dict[int, int]) -> str:
    """`text` with each of the demo's loopback ports moved to its free one."""
    for fixed, free in ports.items():
        text = text.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{free}")
    return text


def fresh_shell_env() -> dict[str, str]:
    """A new terminal's environment: none of the demo's variables."""
    gone = {"SEGMENT_SYNC_SETTINGS", "DAGSTER_HOME", *DEMO_SECRETS}
    return {k: v for k, v in os.environ.items() if k not in gone}


@contextmanager
def background(example: Example, cwd: Path, ports: dict[int, int]) -> Iterator[list[str]]:
    """The block running in its own process group until it prints its ready text."""
    server = subprocess.Popen(
        ["bash", "-c", on_ports(example.body, ports)], cwd=cwd, env=fresh_shell_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    killer = threading.Timer(SAFETY_NET_S, lambda: os.killpg(server.pid, signal.SIGKILL))
    killer.start()
    lines: list[str] = []
    try:
        for line in server.stdout:
            lines.append(line.rstrip("\n"))
            if example.note in line:
                break
        assert any(example.note in line for line in lines), "\n".join(lines)
        # Keep reading, so a server that logs every request never blocks on a full pipe.
        threading.Thread(target=lines.extend, args=(server.stdout,), daemon=True).start()
        yield lines
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        killer.cancel()


def run_blocks(blocks: list[Example], cwd: Path, ports: dict[int, int]) -> dict[int, str]:
    """Run the blocks in one bash session, in order; {block line: its output}."""
    script = ["set -euo pipefail"]
    for block in blocks:
        script += [f"echo '::block {block.line}::'", on_ports(block.body, ports)]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=cwd, env=fresh_shell_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=SAFETY_NET_S,
    )  # fmt: skip
    outputs: dict[int, str] = {}
    for part in result.stdout.split("::block ")[1:]:
        line, _, output = part.partition("::\n")
        outputs[int(line)] = output
    assert result.returncode == 0, f"the block at line {max(outputs)} failed:\n{result.stdout}"
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("page", QUICK_START_PAGES)
def test_every_shell_example_of_the_quick_start_runs(page: str, tmp_path: Path) -> None:
    marked = examples(REPO / page)
    ports = {fixed: free_port() for fixed in DEMO_PORTS}
    root = checkout(tmp_path, ports)
    servers = [e for e in marked if e.kind == "background"]
    blocks = [e for e in marked if e.kind == "run"]
    assert blocks, f"{page} marks no example to run"
    assert len(servers) <= 1
    with background(servers[0], root, ports) if servers else _nothing() as _:
        outputs = run_blocks(blocks, root, ports)
    for block in blocks:
        assert block.note in outputs[block.line], (
            f"{page}:{block.line}: output lacks {block.note!r}:\n{outputs[block.line]}"
        )


@pytest.mark.parametrize("page", QUICK_START_PAGES)
def test_every_shell_example_of_the_quick_start_is_marked(page: str) -> None:
    marked = examples(REPO / page)
    assert all(e.kind != "skip" or e.note for e in marked)


def test_an_unmarked_shell_example_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n```sh\nsegment-sync settings check\n```\n")
    with pytest.raises(ValueError, match="1 shell blocks but 0 test markers"):
        examples(page)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
