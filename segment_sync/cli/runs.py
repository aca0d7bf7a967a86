"""`segment-sync run|replay|resync`: one sync, replay or resync in this process.

Only click at import: each command imports what it runs (`--help` stays fast).
"""

from __future__ import annotations

import sys
import uuid

import click

from segment_sync.cli.options import load_or_fail, settings_option


@click.group()
def run() -> None:
    """Run one sync in this process."""


@run.command("outbound")
@settings_option
@click.option(
    "--stream",
    type=click.Choice(["events", "profiles", "all"]),
    default="all",
    show_default=True,
)
@click.option(
    "--follow",
    is_flag=True,
    help="Then keep sending rows as they commit for outbound.follow_s (as sensor runs do).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only print what would be sent (per type, requests, bytes, samples); send nothing.",
)
@click.option("--upto", type=click.IntRange(min=0), default=None, help="Up to this row id only.")
@click.option(
    "--shard",
    type=click.IntRange(min=0),
    default=None,
    help="Only this shard (0 to outbound.shards - 1); default every shard in turn.",
)
@click.option(
    "--destination",
    default=None,
    help="Only this one of outbound.destinations (by name); default every destination.",
)
def run_outbound(
    settings_file: str | None,
    stream: str,
    follow: bool,
    dry_run: bool,
    upto: int | None,
    shard: int | None,
    destination: str | None,
) -> None:
    """Deliver everything pending now (bounded chunks); exits non-zero if anything failed."""
    from segment_sync.arrow_pool import system_pool_for_import

    with system_pool_for_import():  # before pyarrow's first import (outbound_runs brings it)
        from segment_sync.cli.outbound_runs import dry_run_outbound, run_manual_outbound
    from segment_sync.settings import SettingsError

    loaded = load_or_fail(settings_file)
    if shard is not None and shard >= loaded.outbound.shards:
        raise click.BadParameter(
            f"outbound.shards is {loaded.outbound.shards}: use 0 to {loaded.outbound.shards - 1}",
            param_hint="--shard",
        )
    names = loaded.destination_names()
    if destination is not None and destination not in names:
        known = ", ".join(n for n in names if n) or "none: the settings have one destination"
        raise click.BadParameter(
            f"no destination {destination!r} in outbound.destinations ({known})",
            param_hint="--destination",
        )
    if follow and upto is not None:
        raise click.BadParameter("--upto ends the run at a row; --follow keeps it going: pick one")
    if dry_run:
        try:
            ok = dry_run_outbound(loaded, stream, echo=click.echo, destination=destination)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        sys.exit(0 if ok else 1)
    ok = run_manual_outbound(
        loaded,
        stream,
        run_id=f"manual-{uuid.uuid4().hex[:12]}",
        echo=click.echo,
        follow_s=loaded.outbound.follow_s if follow else 0.0,
        upto=upto,
        shard=shard,
        destination=destination,
    )
    sys.exit(0 if ok else 1)


@run.command("inbound")
@settings_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only print what would be sent (per action, requests, bytes, samples); send nothing.",
)
def run_inbound(settings_file: str | None, dry_run: bool) -> None:
    """Ingest everything pending in the webhook buffer now; exits non-zero if any item failed."""
    from segment_sync.cli.inbound_runs import dry_run_inbound, run_manual_inbound

    loaded = load_or_fail(settings_file)
    if dry_run:
        sys.exit(0 if dry_run_inbound(loaded, echo=click.echo) else 1)
    ok = run_manual_inbound(loaded, run_id=f"manual-{uuid.uuid4().hex[:12]}", echo=click.echo)
    sys.exit(0 if ok else 1)


@click.group()
def replay() -> None:
    """Re-queue or resend what failed, after a fix (outbound keeps its messageIds: Segment deduplicates)."""


@replay.command("inbound")
@settings_option
@click.option("--filter", "filter_text", default=None, help="Substring of the error or payload.")
@click.option("--since", default=None, help="Failed at or after: ISO date/time or 30m, 1h, 7d ago.")
@click.option("--until", default=None, help="Failed before: ISO date/time or 30m, 1h, 7d ago.")
@click.option(
    "--include-unknown",
    is_flag=True,
    help="Also re-queue items whose outcome is unknown (Antavo did not answer, or its answer "
    "did not account for them). Antavo may have registered them already and has no idempotency key, so each one "
    "it has is registered twice: check them in Antavo first.",
)
def replay_inbound_command(
    settings_file: str | None,
    filter_text: str | None,
    since: str | None,
    until: str | None,
    include_unknown: bool,
) -> None:
    """Put failed buffered webhook events back to pending (attempts reset) for the next run.

    Items of unknown outcome stay as they are unless --include-unknown.
    """
    from segment_sync import factory
    from segment_sync.inbound.replay import replay_inbound
    from segment_sync.logs.filters import FilterError

    try:
        buffer = factory.inbound_buffer(load_or_fail(settings_file))
        try:
            replay_inbound(
                buffer, filter_text, since, until, echo=click.echo, include_unknown=include_unknown
            )
        finally:
            buffer.close()
    except FilterError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def resync() -> None:
    """Send every row of a time range again."""


_STREAMS = click.Choice(["events", "profiles", "all"])


def _check_times(since: str | None, until: str | None, filter_text: str = "") -> None:
    """A bad filter or time fails here, before any run starts (one line, no traceback)."""
    from segment_sync.logs.filters import FilterError, compile_filter
    from segment_sync.logs.time_window import time_range

    try:
        compile_filter(filter_text, "outbound")
        time_range(since, until)
    except FilterError as exc:
        raise click.ClickException(str(exc)) from None


@replay.command("outbound")
@settings_option
@click.option(
    "--filter",
    "filter_text",
    default="",
    help="The manual's outbound log filter, e.g. 'Error contains external_customer_id' or "
    "'Status code is 400' (fields: Identifier, Customer ID, Event type, Error, Status code).",
)
@click.option("--since", default=None, help="Latest failure at or after (ISO, 'now', 1h, 7d).")
@click.option("--until", default=None, help="Latest failure before (a bare date includes it).")
@click.option("--stream", type=_STREAMS, default="all", show_default=True)
def replay_outbound(
    settings_file: str | None,
    filter_text: str,
    since: str | None,
    until: str | None,
    stream: str,
) -> None:
    """Resend the failed or pending messages that match, rebuilt from their source rows.

    A message Segment accepted (a `delivered` row) is never resent. Exits non-zero if anything
    failed or stayed pending again.
    """
    from segment_sync.cli.outbound_runs import run_manual_resend
    from segment_sync.outbound.replay import replay as replay_rows
    from segment_sync.outbound.replay import streams_of

    loaded = load_or_fail(settings_file)
    _check_times(since, until, filter_text)
    run_id = f"manual-{uuid.uuid4().hex[:12]}"

    def work(sync, streams):
        return replay_rows(sync, loaded.logs.dir, streams, run_id, filter_text, since, until)

    ok = run_manual_resend(
        loaded, "outbound_replay_job", run_id, work, streams_of(stream), echo=click.echo
    )
    sys.exit(0 if ok else 1)


@resync.command("outbound")
@settings_option
@click.option("--since", required=True, help="Rows that occurred at or after (ISO, 1h, 7d).")
@click.option("--until", default=None, help="Rows that occurred before (default: now).")
@click.option("--stream", type=_STREAMS, default="all", show_default=True)
def resync_outbound(settings_file: str | None, since: str, until: str | None, stream: str) -> None:
    """Resend every row that occurred in the range and that the sync has passed.

    E.g. after adding an action to outbound.event_sync. Exits non-zero if anything failed.
    """
    from segment_sync.cli.outbound_runs import run_manual_resend
    from segment_sync.outbound.replay import resync as resync_rows
    from segment_sync.outbound.replay import streams_of

    loaded = load_or_fail(settings_file)
    _check_times(since, until)
    run_id = f"manual-{uuid.uuid4().hex[:12]}"

    def work(sync, streams):
        return resync_rows(sync, streams, run_id, since, until)

    ok = run_manual_resend(
        loaded, "outbound_resync_job", run_id, work, streams_of(stream), echo=click.echo
    )
    sys.exit(0 if ok else 1)
