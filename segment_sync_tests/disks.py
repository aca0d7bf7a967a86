"""Test helpers for a disk that fills up or turns read-only (see the `small_tmpfs` fixture)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path


def fill_disk(directory: Path) -> Path:
    """Fill the filesystem of `directory` with one file; delete the file to free the space."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:  # unbuffered: nothing left to flush
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def break_disk(mount_point: Path, how: str) -> Callable[[], None]:
    """Make writes under the tmpfs `mount_point` fail for real; return the repair.

    `full`: no space left (ENOSPC); `read-only`: remounted read-only (EROFS; the kernel
    refuses that while a file on it is open for writing).
    """
    if how == "full":
        return fill_disk(mount_point).unlink
    if how == "read-only":
        _remount(mount_point, "ro")
        return lambda: _remount(mount_point, "rw")
    raise ValueError(f"unknown disk fault {how!r}")


def _remount(mount_point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)
