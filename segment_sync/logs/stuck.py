"""A busy table that stays busy: its holder hung (NFS, a wedged run) or, on S3, wrote a lease
from a clock that runs ahead. Retention would silently stop until the disk fills.

Stateless: a table still holding a partition whose every row passed its retention more than
STUCK_AFTER ago was not maintained by any of the hourly runs since, so its lock has been held
through them all. Such a busy table fails the run ("transient": the next run retries) instead
of being skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from segment_sync.logs.layout import data_files, partition_day, partition_dirs, table_dir

# Hourly retention drops a partition within the hour its last row passes the cutoff; a day
# late means every run for a day found the table held.
STUCK_AFTER = timedelta(days=1)


class TableStuck(TimeoutError):
    """A busy table whose retention is overdue: its lock has been held for over a day."""

    def __init__(self, table: str, oldest: date, how_to_stop: str) -> None:
        self.table = table
        super().__init__(
            f"{table}: busy, and it still holds rows from {oldest.isoformat()}, over "
            f"{STUCK_AFTER.days} day past its retention: its maintenance lock has been held "
            f"through every maintenance run for over a day, so retention and compaction stopped. "
            f"{how_to_stop}"
        )


def overdue_day(days: Iterable[date], cutoff: datetime) -> date | None:
    """The oldest of `days` whose last row passed `cutoff` over STUCK_AFTER ago, or None."""
    late = cutoff.astimezone(UTC) - STUCK_AFTER
    overdue = [d for d in days if datetime.combine(d + timedelta(days=1), time(), UTC) <= late]
    return min(overdue, default=None)


def check_local(logs_dir: Path | str, table: str, cutoff: datetime) -> None:
    """TableStuck if busy `table` under a local logs.dir is overdue (see the module)."""
    dirs = {d: partition_day(d) for d in partition_dirs(logs_dir, table)}
    # A dropped partition whose folder stays (a schema file, a writer's new file) is no sign.
    held = [day for d, day in dirs.items() if day and overdue_day([day], cutoff) and data_files(d)]
    oldest = min(held, default=None)
    if oldest is None:
        return
    lock = table_dir(logs_dir, table) / ".maintenance.lock"
    raise TableStuck(
        table,
        oldest,
        f"Find the process holding {lock} (`fuser -v {lock}` or `lsof {lock}` on the machine "
        "that holds it: a wedged maintenance or sync run, or a hung NFS mount) and stop it; "
        "the next run then maintains the table",
    )


def check_s3(table: str, days: Iterable[date], cutoff: datetime, lease: str, holder: str) -> None:
    """TableStuck if busy `table` on S3 is overdue; `lease` names the lease object, `holder`
    what it says (owner, expiry)."""
    oldest = overdue_day(days, cutoff)
    if oldest is None:
        return
    raise TableStuck(
        table,
        oldest,
        f"The lease {lease} says {holder}. Stop that maintainer if it still runs (the owner "
        "is host:pid); if none runs (a clock ahead of the others keeps its expiry in the "
        "future), delete the lease object; the next run then maintains the table",
    )
