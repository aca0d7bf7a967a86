"""`segment-sync run inbound`: one ingest in this process, with a summary."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync.inbound.ingest import InboundIngest, IngestResult
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, run_manually
from segment_sync.settings import Settings


def summary_lines(result: IngestResult) -> list[str]:
    c = result.counts
    lines = [
        f"items {c.items}: done {c.done}, failed {c.failed}, retry later {c.retried}, "
        f"no mapping matched {c.no_match}; Antavo events registered {c.antavo_events}",
    ]
    lines += [f"  {n} x {error}" for error, n in result.errors.most_common(5)]
    return lines


def run_manual_inbound(
    settings: Settings, run_id: str, echo: Callable[[str], None] = print
) -> bool:
    """Process the buffer once; prints a summary; True when no item failed or awaits a retry."""
    results: list[IngestResult] = []

    def work(logs: LogWriter, record: RunRecord, redactor: Redactor) -> None:
        key, secret = settings.antavo_credentials()
        redactor.add(key)
        redactor.add(secret)
        result = InboundIngest(settings, key, secret, logs).run(run_id)
        results.append(result)
        c = result.counts
        record.count(c.antavo_events, c.failed, c.no_match, c.requests)
        if not result.ok:
            raise RuntimeError(f"{c.failed} item(s) failed, {c.retried} will be retried")

    def summary() -> list[str]:
        return summary_lines(results[0]) if results else []

    return run_manually(settings.logs.dir, "inbound_ingest_job", run_id, work, summary, echo)
