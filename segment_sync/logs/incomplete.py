"""Maintenance table by table: one table that cannot be maintained never stops the others."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from segment_sync.logs.s3_lease import LeaseLost
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriteError
from segment_sync.redaction import error_kind, mask_url_passwords

T = TypeVar("T")
log = logging.getLogger(__name__)
# What maintenance can meet and says in words: a refused write, a busy or lost lock, a file.
_FORESEEN = (LogWriteError, LeaseLost, TimeoutError, OSError)


class MaintenanceIncomplete(Exception):
    """Some tables could not be maintained; `report` holds what was done for the others."""

    def __init__(
        self, report: list, failures: dict[str, BaseException], quarantined: list[Path]
    ) -> None:
        self.report = report
        self.failures = failures
        # Damaged files the failed tables moved aside before failing: no later run names them.
        self.quarantined = quarantined
        done = ", ".join(r.table for r in report) or "none"
        problems = "; ".join(f"{table}: {describe(exc)}" for table, exc in failures.items())
        super().__init__(
            f"could not maintain {len(failures)} log table(s) ({problems}); the others were "
            f"maintained ({done}). No row was lost: an input file is deleted only after its "
            "merged file is published, and the next run maintains what this one could not"
        )

    @property
    def disk_refused(self) -> bool:
        """Whether a table failed because logs.dir refused a write (full, read-only)."""
        return any(isinstance(exc, LogWriteError) for exc in self.failures.values())


def describe(exc: BaseException) -> str:
    """What went wrong, without payload: our own errors say it; an OS or S3 error keeps its
    text (paths, no rows) with any URL password masked; anything else only its kind."""
    if isinstance(exc, _FORESEEN):
        return f"{type(exc).__name__}: {mask_url_passwords(str(exc))}"
    return error_kind(exc)


def each_table(maintain: Callable[[str, list[Path]], T]) -> list[T]:
    """`maintain(table, moved)` every log table in turn (`moved`: where it lists the damaged
    files it moves aside); MaintenanceIncomplete after the last if any failed."""
    report: list[T] = []
    failures: dict[str, BaseException] = {}
    quarantined: list[Path] = []
    for table in TABLES:
        moved: list[Path] = []
        try:
            report.append(maintain(table, moved))
        except Exception as exc:  # noqa: BLE001 - raised below, with the tables that were done
            failures[table] = exc
            quarantined += moved
            if not isinstance(exc, _FORESEEN):  # a bug: the run tells its kind, the log where
                where = "".join(traceback.format_tb(exc.__traceback__))  # frames, no values
                log.error(
                    "could not maintain log table %s: %s at\n%s", table, error_kind(exc), where
                )
    if failures:
        raise MaintenanceIncomplete(report, failures, quarantined)
    return report
