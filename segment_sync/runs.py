"""Run results: one `sync_runs` row per run, whatever happened to it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.redaction import Redactor
from segment_sync.settings import SettingsError

log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """Filled in by the run as it goes; written as a row when the run ends."""

    run_id: str
    job: str
    trigger: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    messages_sent: int = 0
    messages_failed: int = 0
    messages_skipped: int = 0
    requests: int = 0
    bytes: int = 0
    error: str | None = None

    def count(
        self, sent: int, failed: int, skipped: int, requests: int = 0, bytes_: int = 0
    ) -> None:
        """Set the run's message and request counts."""
        self.messages_sent, self.messages_failed, self.messages_skipped = sent, failed, skipped
        self.requests, self.bytes = requests, bytes_

    def row(self, status: str) -> dict:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "ended_at": datetime.now(UTC),
            "status": status,
            "messages_sent": self.messages_sent,
            "messages_failed": self.messages_failed,
            "messages_skipped": self.messages_skipped,
            "requests": self.requests,
            "bytes": self.bytes,
            "error": self.error,
        }


def run_manually(
    logs_dir: str,
    job: str,
    run_id: str,
    work: Callable[[LogWriter, RunRecord, Redactor], None],
    summary: Callable[[], list[str]],
    echo: Callable[[str], None] = print,
    *,
    secrets: Iterable[str] = (),
) -> bool:
    """A `segment-sync run ...` command: `work` raises RuntimeError to fail; prints a summary.

    `secrets` (the settings' known secrets) are masked in what it prints and records."""
    logs = LogWriter(logs_dir)
    record = RunRecord(run_id, job, "manual")
    redactor = Redactor(secrets)
    try:
        with recorded_run(logs, record, redactor):
            work(logs, record, redactor)
    except (RuntimeError, SettingsError) as exc:
        for line in summary():
            echo(line)
        echo(f"run {run_id} FAILED: {redactor.text(str(exc))}")
        return False
    for line in summary():
        echo(line)
    echo(f"run {run_id} succeeded; logs in {logs_dir}")
    return True


@contextmanager
def recorded_run(logs: LogWriter, record: RunRecord, redactor: Redactor) -> Iterator[RunRecord]:
    """Write the run's `sync_runs` row on the way out, success or failure (and re-raise)."""
    try:
        yield record
    except BaseException as exc:
        record.error = redactor.text(record.error or f"{type(exc).__name__}: {exc}")
        try:
            logs.write("sync_runs", [record.row("failure")])
        # Attempted; the run's own error is the news, not the log's.
        except (OSError, LogWriteError) as write_error:
            log.warning("could not write the sync_runs row of %s: %s", record.run_id, write_error)
        _analysts_can_open_the_logs(logs)
        raise
    logs.write("sync_runs", [record.row("success")])
    _analysts_can_open_the_logs(logs)


def _analysts_can_open_the_logs(logs: LogWriter) -> None:
    """After the first run of any kind, `segment_sync.duckdb` exists (never fails the run)."""
    from segment_sync.logs.views import analytics_db_after_a_run

    try:
        analytics_db_after_a_run(logs.logs_dir)
    except (OSError, duckdb.Error) as exc:
        log.warning("could not create the analysts' DuckDB file under %s: %s", logs.logs_dir, exc)
