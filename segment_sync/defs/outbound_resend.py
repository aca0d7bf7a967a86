"""Replay and resync as Dagster jobs, launched from the launchpad with config.

With `outbound.destinations` (`build_resend_jobs`), each destination in turn resends the rows
routed to it, with its own write key resource, as `segment-sync replay|resync outbound` does;
the config's `destination` narrows it to one.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

from collections.abc import Iterator
from typing import Literal

import dagster as dg

from segment_sync import factory
from segment_sync.defs.destinations import resource_key
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
from segment_sync.settings import Settings

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


class RoutedReplayConfig(ReplayConfig):
    """ReplayConfig with several destinations: every one by default, or only `destination`."""

    destination: str | None = None  # e.g. eu; null: every destination in turn


class RoutedResyncConfig(ResyncConfig):
    """ResyncConfig with several destinations: every one by default, or only `destination`."""

    destination: str | None = None


def _resend(
    context: dg.OpExecutionContext,
    loaded: Settings,
    served: list[tuple[str | None, str]],
    action: str,
    stream: str,
    check: tuple[str, str | None, str | None],
    resend: Resender,
) -> Iterator[dg.Output[None]]:
    """Resend on each (destination, write key) in turn, in one run record."""
    logs = factory.log_writer(loaded)
    secrets = [*(key for _, key in served), *loaded.secrets()]
    with op_run_record(context, logs, secrets, settings=loaded) as (record, redactor):
        filter_text, since, until = check
        try:
            compile_filter(filter_text, "outbound")
            time_range(since, until)
        except FilterError as exc:
            record.error = str(exc)
            fail_run(context, record.error, "configuration")
        done = []
        for name, key in served:
            sync = factory.outbound_sync(loaded.for_destination(name), key, logs)
            done.extend(resend_enabled(sync, streams_of(stream), resend))
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
    served = [(None, segment.write_key)]
    yield from _resend(context, settings.load(), served, "replay", config.stream, check, work)


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
    served = [(None, segment.write_key)]
    yield from _resend(context, settings.load(), served, "resync", config.stream, check, work)


@dg.job(description="Replay: resend the failed or pending outbound messages that match.")
def outbound_replay_job() -> None:
    replay_outbound_messages()


@dg.job(description="Resync: resend every outbound row of a time range (e.g. a new action).")
def outbound_resync_job() -> None:
    resync_outbound_rows()


def _served(
    context: dg.OpExecutionContext, names: list[str], chosen: str | None
) -> list[tuple[str | None, str]]:
    """(destination, write key) of every destination, or of the one the config chose."""
    if chosen is not None and chosen not in names:
        fail_run(
            context,
            f"destination: no {chosen!r} in outbound.destinations ({', '.join(names)}); use one "
            "of those names, or leave it out to resend to every destination",
            "configuration",
        )
    picked = names if chosen is None else [chosen]
    return [(n, getattr(context.resources, resource_key(n)).write_key) for n in picked]


def _routed_ops(names: list[str]) -> tuple[dg.OpDefinition, dg.OpDefinition]:
    """The replay and resync ops for `outbound.destinations`: same names, config and work, each
    destination with its own write key resource."""
    resources = {"settings", *(resource_key(n) for n in names)}

    @dg.op(
        name="replay_outbound_messages",
        description="Resend failed or pending outbound messages (same messageIds), to each "
        "destination the rows routed to it.",
        required_resource_keys=resources,
    )
    def replay_routed(
        context: dg.OpExecutionContext, config: RoutedReplayConfig
    ) -> Iterator[dg.Output[None]]:
        loaded = context.resources.settings.load()
        served = _served(context, names, config.destination)

        def work(sync, streams):
            return replay(
                sync, loaded.logs.dir, streams, context.run_id, config.filter, config.since,
                config.until,
            )  # fmt: skip

        check = (config.filter, config.since, config.until)
        yield from _resend(context, loaded, served, "replay", config.stream, check, work)

    @dg.op(
        name="resync_outbound_rows",
        description="Resend every loyalty row of a time range that the sync has passed, to each "
        "destination the rows routed to it.",
        required_resource_keys=resources,
    )
    def resync_routed(
        context: dg.OpExecutionContext, config: RoutedResyncConfig
    ) -> Iterator[dg.Output[None]]:
        loaded = context.resources.settings.load()
        served = _served(context, names, config.destination)

        def work(sync, streams):
            return resync(sync, streams, context.run_id, config.since, config.until)

        check = ("", config.since, config.until)
        yield from _resend(context, loaded, served, "resync", config.stream, check, work)

    return replay_routed, resync_routed


def build_resend_jobs(settings: Settings) -> tuple[dg.JobDefinition, dg.JobDefinition]:
    """`outbound_replay_job` and `outbound_resync_job` for these settings (the module's own
    jobs for a single destination)."""
    if not settings.outbound.destinations:
        return outbound_replay_job, outbound_resync_job
    replay_op, resync_op = _routed_ops([d.name for d in settings.outbound.destinations])

    @dg.job(name="outbound_replay_job", description=outbound_replay_job.description)
    def routed_replay() -> None:
        replay_op()

    @dg.job(name="outbound_resync_job", description=outbound_resync_job.description)
    def routed_resync() -> None:
        resync_op()

    return routed_replay, routed_resync
