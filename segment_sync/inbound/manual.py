"""`segment-sync run inbound`: one ingest in this process, with a summary."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync.inbound.ingest import InboundIngest, IngestResult
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, recorded_run
from segment_sync.settings import Settings, SettingsError


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
    logs = LogWriter(settings.logs.dir)
    record = RunRecord(run_id, "inbound_ingest_job", "manual")
    redactor = Redactor()
    result: IngestResult | None = None
    try:
        with recorded_run(logs, record, redactor):
            key, secret = settings.antavo_credentials()
            redactor.add(key)
            redactor.add(secret)
            result = InboundIngest(settings, key, secret, logs).run(run_id)
            c = result.counts
            record.messages_sent, record.messages_failed = c.antavo_events, c.failed
            record.messages_skipped, record.requests = c.no_match, c.requests
            if not result.ok:
                raise RuntimeError(f"{c.failed} item(s) failed, {c.retried} will be retried")
    except (RuntimeError, SettingsError) as exc:
        for line in summary_lines(result) if result else []:
            echo(line)
        echo(f"run {run_id} FAILED: {redactor.text(str(exc))}")
        return False
    for line in summary_lines(result):
        echo(line)
    echo(f"run {run_id} succeeded; logs in {settings.logs.dir}")
    return True
