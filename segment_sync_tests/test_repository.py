"""The checkout a newcomer clones: a short README whose links resolve into docs/, and the UI's
leftovers stay untracked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_links_nothing_outside_the_repository() -> None:
    for readme in (ROOT / "README.md", ROOT / "bench" / "README.md"):
        outside = [t for t in LINK.findall(readme.read_text()) if t.startswith("../")]
        assert not outside, f"{readme.name} links outside the repository: {outside}"


def test_the_readme_links_the_public_manual() -> None:
    assert "https://docs.antavo.com/twilio-segment" in (ROOT / "README.md").read_text()
    assert "https://docs.antavo.com/twilio-segment" in (ROOT / "docs" / "index.md").read_text()


def test_every_relative_link_of_the_readme_reaches_a_file() -> None:
    links = [t for t in LINK.findall((ROOT / "README.md").read_text()) if "://" not in t]
    missing = [t for t in links if not (ROOT / t.split("#")[0]).is_file()]
    assert links and not missing, f"README.md links to missing files: {missing}"


def test_the_readme_is_a_quick_start_of_at_most_150_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the detail into docs/"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_what_the_dagster_ui_leaves_in_the_repo_root_is_ignored() -> None:
    for left in (".nux/nux.yaml", ".telemetry/id.yaml", "storage/runs.db"):
        ignored = subprocess.run(["git", "check-ignore", "-q", left], cwd=ROOT)
        assert ignored.returncode == 0, f"{left} is not ignored by .gitignore"
