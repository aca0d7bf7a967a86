"""The settings reference is rendered from the models: every key, its real default, its meaning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from segment_sync.settings import OutboundSettings, Settings
from segment_sync.settings.reference import MARKER, missing_meanings, render, sections

REPO = Path(__file__).resolve().parents[2]


def leaf_keys() -> list[str]:
    return [row.key for _, rows in sections() for row in rows]


def test_every_setting_has_a_meaning_and_every_meaning_a_setting() -> None:
    assert missing_meanings() == []


def test_a_new_setting_without_a_meaning_is_named() -> None:
    class MoreOutbound(OutboundSettings):
        batch_limit: int = Field(default=5, ge=1)

    class Extended(Settings):
        outbound: MoreOutbound = Field(default_factory=MoreOutbound)

    assert missing_meanings(Extended) == [
        "outbound.batch_limit: no meaning in settings.meanings.MEANINGS"
    ]
    with pytest.raises(ValueError, match="outbound.batch_limit"):
        render(Extended)


def test_every_section_is_a_heading_with_its_table() -> None:
    page = render()
    for section in ("general", "outbound", "inbound", "inbound.mappings[]", "maintenance.checks"):
        assert f"### `{section}`\n" in page
    assert page.count("| key | takes | default | meaning |") == len(sections())


def test_each_row_shows_the_models_default_and_bounds() -> None:
    rows = {row.key: row for _, rows in sections() for row in rows}
    assert rows["outbound.chunk_size"].default == f"`{Settings().outbound.chunk_size}`"
    assert rows["outbound.chunk_size"].takes == "integer, ≥ 100 and ≤ 1,000,000"
    assert rows["outbound.region"].takes == "one of `us`, `eu`"
    assert rows["outbound.base_url"].takes == "http(s) URL, or `null`"
    assert rows["loyalty_store.url"].default == "`sqlite:///loyalty.db`"
    assert rows["inbound.max_body_bytes"].default == "5 MiB"
    assert rows["alerts.on"].default == "`[run_failure, check_failure]`"
    assert rows["inbound.mappings[].name"].default == "required"


def test_the_reference_names_every_key_of_the_models() -> None:
    page = render()
    assert len(leaf_keys()) > 60
    assert all(f"| `{key}` |" in page for key in leaf_keys())


@pytest.mark.slow
def test_the_built_site_holds_the_generated_reference(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    html = (tmp_path / "settings" / "index.html").read_text()
    assert MARKER not in html
    assert all(f"<code>{key}</code>" in html for key in leaf_keys())
