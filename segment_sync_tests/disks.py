"""Test helpers for a disk that fills up (see the `small_tmpfs` fixture)."""

from __future__ import annotations

from pathlib import Path


def fill_disk(directory: Path) -> Path:
    """Fill the filesystem of `directory` with one file; delete the file to free the space."""
    filler = directory / "filler.bin"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler
