"""Replay and resync as Dagster jobs, launched from the launchpad with config.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

from collections.abc import Iterator
from typing import Literal

import dagster as dg

from segment_sync import factory
from segment_sync.defs.resources import SegmentResource, SettingsResource
from segment_sync.defs.tags import fail_run, op_run_record, report_metadata
from segment_sync.logs.filters import FilterError, compile_filter
from segment_sync.logs.time_window import time_range
from segment_sync.outbound.replay import (
    Resender,
    replay,
    resend_enabled,
    resend_lines,
    resync,
    streams_of,
)
from segment_sync.outbound.report import run_report
from segment_sync.outbound.results import OutboundCounts

StreamChoice = Literal["events", "profiles", "all"]


class ReplayConfig(dg.Config):
    """Which failed or pending messages to resend (see `segment-sync replay outbound --help`)."""

    stream: StreamChoice = "all"
    filter: str = ""  # the manual's outbound log filter, e.g. "Status code is 400"
    since: str | None = None  # latest failure at or after: ISO, "now", 1h, 7d
    until: str | None = None


class ResyncConfig(dg.Config):
    """Which rows to resend: those that occurred in [since, until) that the sync has passed."""

    since: str  # ISO, 1h, 7d
    until: str | None = None
    stream: StreamChoice = "all"


def _resend(
    context: dg.OpExecutionContext,
    settings: SettingsResource,
    segment: SegmentResource,
    action: str,
    stream: str,
    check: tuple[str, str | None, str | None],
    resend: Resender,
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    secrets = [segment.write_key, *loaded.secrets()]
    with op_run_record(context, logs, secrets, settings=loaded) as (record, redactor):
        filter_text, since, until = check
        try:
            compile_filter(filter_text, "outbound")
            time_range(since, until)
        except FilterError as exc:
            record.error = str(exc)
            fail_run(context, record.error, "configuration")
        sync = segment.outbound_sync(loaded, logs)
        done = resend_enabled(sync, streams_of(stream), resend)
        for line in resend_lines(action, done):
            context.log.info(line)
        results = [r for d in done for r in d.results]
        total = OutboundCounts()
        for r in results:
            total.add(r.counts)
        record.count(total.sent, total.failed, total.skipped, total.requests, total.bytes)
        report = run_report(results, loaded.logs.dir, context.run_id, record.started_at)
        metadata = {
            "found": dg.MetadataValue.int(sum(d.found for d in done)),
            "messages_sent": dg.MetadataValue.int(total.sent),
            "messages_failed": dg.MetadataValue.int(total.failed),
            "messages_pending": dg.MetadataValue.int(total.pending),
            "summary": dg.MetadataValue.md("\n".join(resend_lines(action, done))),
        } | report_metadata(report)
        yield dg.AssetObservation(asset_key="outbound_log", metadata=metadata)
        if report.failed:
            record.error = redactor.text(report.description)
            fail_run(context, record.error, report.kind, metadata)
    yield dg.Output(None, metadata=metadata)


@dg.op(description="Resend failed or pending outbound messages (same messageIds).")
def replay_outbound_messages(
    context: dg.OpExecutionContext,
    config: ReplayConfig,
    settings: SettingsResource,
    segment: SegmentResource,
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    logs_dir = settings.load().logs.dir

    def work(sync, streams):
        return replay(
            sync, logs_dir, streams, context.run_id, config.filter, config.since, config.until
        )

    check = (config.filter, config.since, config.until)
    yield from _resend(context, settings, segment, "replay", config.stream, check, work)


@dg.op(description="Resend every loyalty row of a time range that the sync has passed.")
def resync_outbound_rows(
    context: dg.OpExecutionContext,
    config: ResyncConfig,
    settings: SettingsResource,
    segment: SegmentResource,
) -> Iterator[dg.AssetObservation | dg.Output[None]]:
    def work(sync, streams):
        return resync(sync, streams, context.run_id, config.since, config.until)

    check = ("", config.since, config.until)
    yield from _resend(context, settings, segment, "resync", config.stream, check, work)


@dg.job(description="Replay: resend the failed or pending outbound messages that match.")
def outbound_replay_job() -> None:
    replay_outbound_messages()


@dg.job(description="Resync: resend every outbound row of a time range (e.g. a new action).")
def outbound_resync_job() -> None:
    resync_outbound_rows()
