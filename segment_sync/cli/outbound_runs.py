"""`segment-sync run|replay|resync outbound`: one run in this process, with a short summary."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

from segment_sync import factory
from segment_sync.directions import allow_list_off
from segment_sync.logs.filters import FilterError
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.replay import Resend, Resender, resend_enabled, resend_lines
from segment_sync.outbound.report import RunReport, run_report
from segment_sync.outbound.results import OutboundCounts, OutboundFailed, OutboundResult
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.sync import OutboundSync
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, run_manually
from segment_sync.settings import Settings
from segment_sync.settings.hash import settings_hash


def summary_lines(results: list[OutboundResult]) -> list[str]:
    """The run summary: one line per stream (and destination), then the totals."""
    w = 9 if all(r.destination is None for r in results) else 12  # `events@eu` is wider
    lines = [
        f"{'stream':<{w}} {'read':>8} {'sent':>8} {'failed':>7} {'skipped':>8} {'pending':>8} "
        f"{'filtered':>9} {'requests':>9} {'retries':>8} {'MB':>7}  delivered up to"
    ]
    total = OutboundCounts()
    for r in results:
        c = r.counts
        total.add(c)
        lines.append(
            f"{r.label:<{w}} {c.rows_read:>8} {c.sent:>8} {c.failed:>7} {c.skipped:>8} "
            f"{c.pending:>8} {c.not_allow_listed:>9} {c.requests:>9} {c.retries:>8} "
            f"{c.bytes / 1e6:>7.2f}  id {r.watermark_after} of {r.upto}"
        )
    if len(results) > 1:
        lines.append(
            f"{'total':<{w}} {total.rows_read:>8} {total.sent:>8} {total.failed:>7} {total.skipped:>8} "
            f"{total.pending:>8} {total.not_allow_listed:>9} {total.requests:>9} {total.retries:>8} "
            f"{total.bytes / 1e6:>7.2f}"
        )
    return lines


def report_lines(report: RunReport | None, notes: list[str]) -> list[str]:
    """Streams not run (and why), then the top reasons of a failed run."""
    lines = list(notes)
    if report is not None and report.failed:
        lines.append(f"top reasons ({report.kind}):")
        lines.extend(report.reason_lines())
    return lines


@contextmanager
def _ctrl_c_stops_following(
    syncs: list[OutboundSync], echo: Callable[[str], None]
) -> Iterator[None]:
    """The first Ctrl-C ends the follow after its current pass (logged, progress saved)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum: int, frame: object) -> None:
        for sync in syncs:
            sync.stop_following.set()
        signal.signal(signal.SIGINT, previous)
        echo("stopping after the current pass (Ctrl-C again to abort it)")

    signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_manual_outbound(
    settings: Settings,
    stream: str,
    run_id: str,
    echo: Callable[[str], None] = print,
    follow_s: float = 0.0,
    upto: int | None = None,
    shard: int | None = None,
    destination: str | None = None,
) -> bool:
    """Sync `stream` (events, profiles or all); prints a summary; True when everything was
    delivered (nothing failed, nothing stayed pending). A stream that is off is not run.
    With `follow_s`, each stream keeps sending as rows commit (both streams at once).
    With `outbound.shards` > 1, every shard in turn (followed at once), or only `shard`.
    With `outbound.destinations`, every destination in turn, or only `destination`."""
    streams = [Stream.EVENTS, Stream.PROFILES] if stream == "all" else [Stream(stream)]
    results: list[OutboundResult] = []
    notes: list[str] = []
    verdict: list[RunReport] = []

    def work(logs: LogWriter, record: RunRecord, redactor: Redactor) -> None:
        names = settings.destination_names() if destination is None else [destination]
        served = [settings.for_destination(d) for d in names]
        keys = [one.write_key() for one in served]  # every variable checked before anything goes
        for key in keys:
            redactor.add(key)
        enabled = []
        for s in streams:
            off = allow_list_off(settings, s)
            if off:
                notes.append(f"{s.value}: not run; {off}")
            else:
                enabled.append(s)
        if not enabled:
            raise RuntimeError("nothing to run: " + "; ".join(notes))
        everyone = factory.all_shards(settings)
        shards = everyone.members() if shard is None else [Shard(everyone.count, shard)]
        syncs = [
            factory.outbound_sync(one, key, logs, shard=s)
            for one, key in zip(served, keys, strict=True)
            for s in shards
        ]
        jobs = [(sync, s) for s in enabled for sync in syncs]

        def one(job: tuple[OutboundSync, Stream]) -> OutboundResult:
            sync, s = job
            try:
                return sync.run(s, run_id, upto=upto, follow_s=follow_s)
            except OutboundFailed as failed:
                return failed.result

        with _ctrl_c_stops_following(syncs, echo) if follow_s else nullcontext():
            if follow_s and len(jobs) > 1:  # following one stream must not hold the other
                with ThreadPoolExecutor(len(jobs)) as pool:
                    results.extend(pool.map(one, jobs))
            else:
                results.extend(one(j) for j in jobs)
        _judge(results, settings, record, redactor, verdict)

    def summary() -> list[str]:
        return summary_lines(results) + report_lines(verdict[0] if verdict else None, notes)

    job, secrets = "outbound_sync_job", settings.secrets()
    return run_manually(
        settings.logs.dir, job, run_id, work, summary, echo,
        secrets=secrets, settings_hash=settings_hash(settings),
    )  # fmt: skip


def run_manual_resend(
    settings: Settings,
    job: str,
    run_id: str,
    resend: Resender,
    streams: list[Stream],
    echo: Callable[[str], None] = print,
) -> bool:
    """`replay outbound` / `resync outbound`: `resend` does the work on the enabled streams;
    prints what it did; True when every row it found was delivered (or skipped as expected)."""
    action = "replay" if job == "outbound_replay_job" else "resync"
    done: list[Resend] = []
    verdict: list[RunReport] = []

    def work(logs: LogWriter, record: RunRecord, redactor: Redactor) -> None:
        # With several destinations, each resends the rows routed to it (send_rows routes).
        served = [settings.for_destination(d) for d in settings.destination_names()]
        keys = [one.write_key() for one in served]
        for key in keys:
            redactor.add(key)
        for one, key in zip(served, keys, strict=True):
            done.extend(resend_enabled(factory.outbound_sync(one, key, logs), streams, resend))
        results = [r for d in done for r in d.results]
        _judge(results, settings, record, redactor, verdict)

    def summary() -> list[str]:
        return resend_lines(action, done) + report_lines(verdict[0] if verdict else None, [])

    try:
        return run_manually(
            settings.logs.dir, job, run_id, work, summary, echo,
            secrets=settings.secrets(), settings_hash=settings_hash(settings),
        )  # fmt: skip
    except FilterError as exc:
        echo(f"{action} {run_id} FAILED: {exc}")
        return False


def _judge(
    results: list[OutboundResult],
    settings: Settings,
    record: RunRecord,
    redactor: Redactor,
    verdict: list[RunReport],
) -> None:
    """Count the run into its record and judge it (into `verdict`); RuntimeError if it failed."""
    total = OutboundCounts()
    for r in results:
        total.add(r.counts)
    record.count(total.sent, total.failed, total.skipped, total.requests, total.bytes)
    report = run_report(results, settings.logs.dir, record.run_id, record.started_at)
    verdict.append(report)  # before raising: the summary prints the reasons of a failed run
    if report.failed:
        record.error = redactor.text(report.description)
        raise RuntimeError(". ".join(p for p in (report.headline, report.stop_error) if p))


def dry_run_outbound(
    settings: Settings,
    stream: str,
    echo: Callable[[str], None] = print,
    destination: str | None = None,
) -> bool:
    """Print what `run outbound` would send now (to every destination, or only
    `destination`); sends nothing, moves no watermark."""
    from segment_sync.dry_runs import outbound_dry_run

    streams = [Stream.EVENTS, Stream.PROFILES] if stream == "all" else [Stream(stream)]
    plan = outbound_dry_run(settings, streams, destination)
    for line in plan.lines():
        echo(line)
    return bool(plan.streams)
