"""`segment-sync run outbound`: one sync in this process, with a one-screen summary."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.sync import OutboundCounts, OutboundFailed, OutboundResult, OutboundSync
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, run_manually
from segment_sync.settings import Settings


def summary_lines(results: list[OutboundResult]) -> list[str]:
    """The run summary: one line per stream, then the totals."""
    lines = [
        f"{'stream':<9} {'read':>8} {'sent':>8} {'failed':>7} {'skipped':>8} {'pending':>8} "
        f"{'filtered':>9} {'requests':>9} {'retries':>8} {'MB':>7}  delivered up to"
    ]
    total = OutboundCounts()
    for r in results:
        c = r.counts
        total.add(c)
        lines.append(
            f"{r.stream.value:<9} {c.rows_read:>8} {c.sent:>8} {c.failed:>7} {c.skipped:>8} "
            f"{c.pending:>8} {c.not_allow_listed:>9} {c.requests:>9} {c.retries:>8} "
            f"{c.bytes / 1e6:>7.2f}  id {r.watermark_after} of {r.upto}"
        )
    if len(results) > 1:
        lines.append(
            f"{'total':<9} {total.rows_read:>8} {total.sent:>8} {total.failed:>7} {total.skipped:>8} "
            f"{total.pending:>8} {total.not_allow_listed:>9} {total.requests:>9} {total.retries:>8} "
            f"{total.bytes / 1e6:>7.2f}"
        )
    return lines


def run_manual_outbound(
    settings: Settings, stream: str, run_id: str, echo: Callable[[str], None] = print
) -> bool:
    """Sync `stream` (events, profiles or all); prints a summary; True when everything was handled."""
    streams = [Stream.EVENTS, Stream.PROFILES] if stream == "all" else [Stream(stream)]
    results: list[OutboundResult] = []

    def work(logs: LogWriter, record: RunRecord, redactor: Redactor) -> None:
        write_key = settings.write_key()
        redactor.add(write_key)
        sync = OutboundSync(settings, write_key, logs)
        for s in streams:
            try:
                results.append(sync.run(s, run_id))
            except OutboundFailed as failed:
                results.append(failed.result)
                record.error = failed.result.error
        total = OutboundCounts()
        for r in results:
            total.add(r.counts)
        record.count(total.sent, total.failed, total.skipped, total.requests, total.bytes)
        if record.error:
            raise RuntimeError(record.error)

    return run_manually(
        settings.logs.dir, "outbound_sync_job", run_id, work, lambda: summary_lines(results), echo
    )
