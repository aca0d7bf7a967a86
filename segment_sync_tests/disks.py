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


def damage_file(path: Path, how: str) -> None:
    """Damage a Parquet file as a disk fault or a bad copy would.

    `truncated`: only its first half is left (no footer); `scrambled-pages`: bytes in the middle
    of its data pages are flipped, its footer intact (a reader fails only on reading the data).
    """
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "scrambled-pages":
        for index in range(len(data) // 3, len(data) // 2, 3):
            data[index] ^= 0xFF
    else:
        raise ValueError(f"unknown damage {how!r}")
    path.write_bytes(bytes(data))
