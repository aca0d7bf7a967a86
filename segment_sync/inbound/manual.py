"""`segment-sync run inbound` and `replay inbound`: one ingest or one re-queue, with a summary."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest import InboundIngest, IngestError, IngestResult
from segment_sync.logs.filters import FilterError, parse_time
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, run_manually
from segment_sync.settings import Settings


def summary_lines(result: IngestResult) -> list[str]:
    c = result.counts
    lines = [
        f"items {c.items}: done {c.done}, failed {c.failed}, retry later {c.retried}, "
        f"no mapping matched {c.no_match}, left pending {c.left_pending}; "
        f"Antavo events registered {c.antavo_events}",
    ]
    if c.held_elsewhere:
        lines.append(f"  {c.held_elsewhere} pending item(s) are held by another live run")
    lines += [f"  {n} x {error}" for error, n in result.errors.most_common(5)]
    return lines


def failure_message(result: IngestResult) -> str:
    c = result.counts
    return f"{c.failed} item(s) failed, {c.retried} will be retried, {c.left_pending} left pending"


def run_manual_inbound(
    settings: Settings, run_id: str, echo: Callable[[str], None] = print
) -> bool:
    """Process the buffer once; prints a summary; True when every claimed item was delivered."""
    results: list[IngestResult] = []

    def work(logs: LogWriter, record: RunRecord, redactor: Redactor) -> None:
        key, secret = settings.antavo_credentials()
        redactor.add(key)
        redactor.add(secret)
        try:
            result = InboundIngest(settings, key, secret, logs).run(run_id)
        except IngestError as exc:
            results.append(exc.result)
            _count(record, exc.result)
            raise
        results.append(result)
        _count(record, result)
        if not result.ok:
            raise RuntimeError(failure_message(result))

    def summary() -> list[str]:
        return summary_lines(results[0]) if results else []

    try:
        return run_manually(settings.logs.dir, "inbound_ingest_job", run_id, work, summary, echo)
    except OSError as exc:  # the logs themselves (sync_runs) could not be written
        echo(f"run {run_id} FAILED: could not write the logs under logs.dir ({settings.logs.dir}):"
             f" {exc.strerror or exc}")  # fmt: skip
        return False


def _count(record: RunRecord, result: IngestResult) -> None:
    c = result.counts
    record.count(c.antavo_events, c.failed, c.no_match, c.requests)


def replay_inbound(
    settings: Settings,
    text: str | None = None,
    since: str | None = None,
    until: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Re-queue the failed buffered items that match; prints and returns how many.

    `since`/`until` (ISO, `now`, or `30m`/`1h`/`7d` ago) bound when the item failed; a bad time
    raises FilterError with the fix.
    """
    start = parse_time(since) if since else None
    end = parse_time(until, end_of_day=True) if until else None
    if start is not None and end is not None and start >= end:
        raise FilterError(f"--since ({start.isoformat()}) must be earlier than --until")
    buffer = InboundBuffer(settings.inbound.buffer_url)
    try:
        count = buffer.requeue_failed(text, start, end)
        left = buffer.counts().get("failed", 0)
    finally:
        buffer.close()
    echo(
        f"re-queued {count} failed inbound item(s) (attempts reset); {left} failed item(s) "
        "left as they were. The next inbound run (sensor, or `segment-sync run inbound`) "
        "delivers them"
    )
    return count
