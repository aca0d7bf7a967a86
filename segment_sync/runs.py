"""Run results: one `sync_runs` row per run, whatever happened to it."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import duckdb

from segment_sync.logs.queries import logged_run_counts
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.redaction import Redactor
from segment_sync.settings import SettingsError
from segment_sync.signals import stops_deferred

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
    counted: bool = False  # the run counted itself; otherwise its log rows are counted
    stopped_by: str | None = None  # the signal that interrupted it, when one did
    settings_hash: str | None = None  # which settings it used (settings/hash.py)
    written: str | None = None  # the status of its sync_runs row, once written

    def count(
        self, sent: int, failed: int, skipped: int, requests: int = 0, bytes_: int = 0
    ) -> None:
        """Set the run's message and request counts."""
        self.messages_sent, self.messages_failed, self.messages_skipped = sent, failed, skipped
        self.requests, self.bytes = requests, bytes_
        self.counted = True

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
            "settings_hash": self.settings_hash,
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
    settings_hash: str | None = None,
) -> bool:
    """A `segment-sync run ...` command: `work` raises RuntimeError to fail; prints a summary.

    `secrets` (the settings' known secrets) are masked in what it prints and records;
    `settings_hash` says which settings the run used."""
    redactor = Redactor(secrets)
    logs = LogWriter(logs_dir, redactor=redactor)
    record = RunRecord(run_id, job, "manual", settings_hash=settings_hash)
    try:
        with sigterm_stops_like_ctrl_c(record), recorded_run(logs, record, redactor):
            work(logs, record, redactor)
    except (RuntimeError, SettingsError) as exc:
        for line in summary():
            echo(line)
        echo(f"run {run_id} FAILED: {redactor.text(str(exc))}")
        return False
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the record says what it delivered
        if record.written == "success":  # stopped while tidying up after its record
            for line in summary():
                echo(line)
            echo(f"run {run_id} succeeded; logs in {logs_dir}")
            return True
        error = record.error or interrupted_error(record, KeyboardInterrupt())
        unrecorded = (
            "" if record.written else "; its sync_runs row could not be written (see above)"
        )
        echo(f"run {run_id} FAILED: {error}{unrecorded}")
        return False
    for line in summary():
        echo(line)
    echo(f"run {run_id} succeeded; logs in {logs_dir}")
    return True


@contextmanager
def recorded_run(logs: LogWriter, record: RunRecord, redactor: Redactor) -> Iterator[RunRecord]:
    """Write the run's `sync_runs` row on the way out, success or failure (and re-raise).

    The record (queued log rows, counts, the row) is written with stop signals held: a second
    Ctrl-C or a SIGTERM meanwhile used to raise inside it and leave the run unrecorded. Once the
    run is stopping anyway, or has succeeded, a signal held there changes nothing more; only
    the third (or a second SIGTERM) stops it at once, for a write that hangs."""
    try:
        yield record
        with stops_deferred(_say_finishing, redeliver=False):
            # The rows the work left queued, before a sync_runs row may say success.
            unwritten = _write_every_table(logs)
            if unwritten:
                raise unwritten[0]
            logs.write("sync_runs", [record.row("success")])
            record.written = "success"
    except BaseException as exc:
        if record.written is None:
            with stops_deferred(_say_finishing, redeliver=False):
                _record_failure(logs, record, redactor, exc)
        if isinstance(exc, Exception):  # a stopped run exits at once
            _merge_small_log_files(logs)
        _analysts_can_open_the_logs(logs)
        raise
    _merge_small_log_files(logs)
    _analysts_can_open_the_logs(logs)


def _say_finishing() -> None:
    # os.write: a print from a signal handler can meet a print in progress ("reentrant call").
    os.write(
        2,
        b"\nstill writing the run's log rows and its sync_runs row; it exits once they are "
        b"written\n",
    )


def _record_failure(
    logs: LogWriter, record: RunRecord, redactor: Redactor, exc: BaseException
) -> None:
    """Write the queued rows, then the failed or stopped run's `sync_runs` row."""
    _write_queued_rows(logs, record)
    if not record.counted:  # stopped before it could count: its log rows say what it did
        count_from_log(logs.logs_dir, record)
    if isinstance(exc, Exception):
        record.error = record.error or f"{type(exc).__name__}: {exc}"
    else:  # a signal, a termination, a deploy: not an error of its own
        record.error = interrupted_error(record, exc)
    record.error = redactor.text(record.error)
    try:
        logs.write("sync_runs", [record.row("failure")])
        record.written = "failure"
    # Attempted; the run's own error is the news, not the log's.
    except (OSError, LogWriteError) as write_error:
        log.warning("could not write the sync_runs row of %s: %s", record.run_id, write_error)


def _write_queued_rows(logs: LogWriter, record: RunRecord) -> None:
    """Write the rows a stopped or failed run queued but had not written yet, before its
    sync_runs row: a request Antavo or Segment answered just before a stop (say, one waiting
    out a Retry-After) keeps its log rows, and the run's counts include it."""
    for write_error in _write_every_table(logs):  # the run's own error is the news
        log.warning("could not write the queued log rows of %s: %s", record.run_id, write_error)


def _write_every_table(logs: LogWriter) -> list[Exception]:
    """Flush every queued row; the errors of the tables that could not be written. One table
    refusing its rows never leaves the other tables' rows queued (a flush of all tables stops
    at the first that fails), so each is then tried on its own."""
    try:
        logs.flush()
        return []
    except (OSError, LogWriteError, ValueError) as write_error:
        errors: list[Exception] = [write_error]
    for table in TABLES:
        try:
            logs.flush(table)
        except (OSError, LogWriteError, ValueError) as write_error:
            if str(write_error) != str(errors[0]):
                errors.append(write_error)
    return errors


# What stopped a run, by the exception it raised.
_STOPPED_BY = {
    "KeyboardInterrupt": "SIGINT (Ctrl-C)",
    "DagsterExecutionInterruptedError": "a stop of its Dagster run (terminated, Ctrl-C, SIGTERM)",
}


def interrupted_error(record: RunRecord, exc: BaseException) -> str:
    """The `sync_runs` error of an interrupted run: what stopped it and what it delivered."""
    cause = record.stopped_by or _STOPPED_BY.get(type(exc).__name__, type(exc).__name__)
    earlier = f" (before that: {record.error})" if record.error else ""
    return (
        f"interrupted by {cause} before it finished, after {record.messages_sent} message(s) "
        f"delivered in {record.requests} request(s) as its log shows; what it did not log "
        f"stays pending and the next run sends it{earlier}"
    )


def count_from_log(logs_dir: Path | str, record: RunRecord) -> None:
    """Count a run that could not count itself from its own log rows (never raises: a row
    with zeros and a warning beats no row)."""
    try:
        counts = logged_run_counts(logs_dir, record.run_id, record.started_at)
    except Exception as exc:  # noqa: BLE001 - an unreadable log leaves the counts at zero
        log.warning("could not count run %s from its log rows: %s", record.run_id, exc)
        return
    record.count(counts.sent, counts.failed, counts.skipped, counts.requests, counts.bytes)


@contextmanager
def sigterm_stops_like_ctrl_c(record: RunRecord) -> Iterator[None]:
    """SIGTERM (`kill`, a deploy) stops the run as Ctrl-C does, so it ends by writing its logs
    and its `sync_runs` row instead of dying with them unwritten."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        record.stopped_by = "SIGTERM"
        ctrl_c = signal.getsignal(signal.SIGINT)  # a follow run's stop, or the one in force
        if not callable(ctrl_c):
            raise KeyboardInterrupt
        ctrl_c(signal.SIGINT, frame)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _merge_small_log_files(logs: LogWriter) -> None:
    """Merge today's small log files so queries stay fast (logs/fresh.py; never fails the run)."""
    from segment_sync.logs.fresh import merge_fresh_logs
    from segment_sync.logs.object_store import is_object_store

    if not is_object_store(logs.logs_dir):  # on S3 the hourly maintenance merges them
        merge_fresh_logs(logs.logs_dir, durable=logs.durable)


def _analysts_can_open_the_logs(logs: LogWriter) -> None:
    """After the first run of any kind, `segment_sync.duckdb` exists (never fails the run)."""
    from segment_sync.logs.views import analytics_db_after_a_run

    try:
        analytics_db_after_a_run(logs.logs_dir)
    except (OSError, duckdb.Error) as exc:
        log.warning("could not create the analysts' DuckDB file under %s: %s", logs.logs_dir, exc)
