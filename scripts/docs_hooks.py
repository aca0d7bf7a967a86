"""MkDocs hook: the settings reference is rendered from the pydantic models at every build."""

from __future__ import annotations

from typing import Any

from segment_sync.settings.reference import MARKER, render


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Put the generated tables where `docs/settings.md` holds the marker."""
    if page.file.src_uri != "settings.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/settings.md lost its marker {MARKER}")
    return markdown.replace(MARKER, render())
