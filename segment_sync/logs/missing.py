"""The one line for a `logs.dir` that is no folder: not there yet, or a file (light: no DuckDB)."""

from __future__ import annotations

from pathlib import Path


def no_logs_folder(path: Path | str, key: str = "logs.dir in the settings") -> str:
    """Why `path` holds no logs, and the fix: a file where the folder belongs, or no folder yet."""
    path = Path(path)
    if path.exists():
        return (
            f"{path} ({key}) is a file, not a folder; point logs.dir at a folder (the first "
            "sync run creates it) or move the file away"
        )
    return f"no logs yet: {path} ({key}) does not exist; it is created by the first sync run"
