"""`segment-sync run inbound` and `replay inbound`: one ingest or one re-queue, with a summary."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync import factory
from segment_sync.inbound.ingest_result import IngestError, IngestResult
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, run_manually
from segment_sync.settings import Settings
from segment_sync.settings.hash import settings_hash


def summary_lines(result: IngestResult) -> list[str]:
    c = result.counts
    lines = [
        f"items {c.items}: done {c.done}, failed {c.failed}, unknown outcome {c.unknown}, "
        f"retry later {c.retried}, no mapping matched {c.no_match}, left pending "
        f"{c.left_pending}; Antavo events registered {c.antavo_events}",
    ]
    if c.unlogged:
        lines.append(
            f"  {c.unlogged} event(s) Antavo registered could not be logged: their items stay "
            "pending and the next run registers them again"
        )
    if c.held_elsewhere:
        lines.append(f"  {c.held_elsewhere} pending item(s) are held by another live run")
    lines += [f"  {n} x {error}" for error, n in result.errors.most_common(5)]
    return lines


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
            result = factory.inbound_ingest(settings, key, secret, logs).run(run_id)
        except IngestError as exc:
            results.append(exc.result)
            _count(record, exc.result)
            raise
        results.append(result)
        _count(record, result)
        if not result.ok:
            raise RuntimeError(result.failure_message())

    def summary() -> list[str]:
        return summary_lines(results[0]) if results else []

    try:
        job, secrets = "inbound_ingest_job", settings.secrets()
        return run_manually(
            settings.logs.dir, job, run_id, work, summary, echo,
            secrets=secrets, settings_hash=settings_hash(settings),
        )  # fmt: skip
    except OSError as exc:  # the logs themselves (sync_runs) could not be written
        echo(f"run {run_id} FAILED: could not write the logs under logs.dir ({settings.logs.dir}):"
             f" {exc.strerror or exc}")  # fmt: skip
        return False


def _count(record: RunRecord, result: IngestResult) -> None:
    c = result.counts
    record.count(c.antavo_events, c.failed, c.no_match, c.requests)


def dry_run_inbound(settings: Settings, echo: Callable[[str], None] = print) -> bool:
    """Print what an ingest would send now; sends nothing, claims nothing; False if it could not."""
    from segment_sync.dry_runs import inbound_dry_run

    plan = inbound_dry_run(settings)
    if isinstance(plan, str):
        echo(f"dry run: {plan}")
        return False
    for line in plan.lines():
        echo(line)
    return True
