"""The `segment-sync` command line."""

from __future__ import annotations

import sys
import uuid

import click

from segment_sync.cli_options import load_or_fail, settings_option
from segment_sync.settings import SettingsError


class _Commands(click.Group):
    """Turns an unreachable database or an unwritable logs.dir into one line naming the setting."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import InterfaceError, OperationalError

        from segment_sync.logs.store import LogWriteError

        try:
            return super().invoke(ctx)
        except LogWriteError as exc:
            raise click.ClickException(str(exc)) from None
        except (OperationalError, InterfaceError) as exc:
            from segment_sync.redaction import mask_url_passwords

            cause = str(exc.orig or exc).strip().splitlines()[0]
            raise click.ClickException(
                f"cannot use the database: {mask_url_passwords(cause)}; check that the server is "
                "running and that loyalty_store.url, outbound.state_url and inbound.buffer_url "
                "in the settings point at it"
            ) from None


@click.group(cls=_Commands)
def main() -> None:
    """Two-way sync between a loyalty platform (Antavo) and Twilio Segment."""


@main.group()
def settings() -> None:
    """Check the settings file."""


@settings.command("check")
@settings_option
@click.option("--connect", is_flag=True, help="Also verify the write key against the region.")
def settings_check(settings_file: str | None, connect: bool) -> None:
    """Validate the settings file; with --connect, ask Segment whether the write key is accepted."""
    from segment_sync.directions import status_lines
    from segment_sync.outbound.connect import check_write_key

    loaded = load_or_fail(settings_file)
    click.echo(f"settings OK: region {loaded.outbound.region}, endpoint {loaded.outbound.endpoint}")
    for line in status_lines(loaded):
        click.echo(line)
    if connect:
        try:
            message = check_write_key(loaded)
        except (SettingsError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(message)


@main.group()
def demo() -> None:
    """Synthetic data and the local demo."""


@demo.command("seed")
@settings_option
@click.option("--events", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--profiles", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--customers", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", "seed_value", type=int, default=7, show_default=True)
def demo_seed(
    settings_file: str | None, events: int, profiles: int, customers: int, seed_value: int
) -> None:
    """Append realistic synthetic loyalty events and profile changes to the loyalty store."""
    from segment_sync.loyalty.demo import seed
    from segment_sync.loyalty.store import LoyaltyStore

    store = LoyaltyStore(load_or_fail(settings_file).loyalty_store.url)
    seed(store, events, profiles, customers, seed_value)
    click.echo(
        f"seeded {events} loyalty events and {profiles} profile changes for {customers} customers"
    )


@demo.command("run")
@click.option("--events", type=click.IntRange(min=0), default=2000, show_default=True)
@click.option("--profiles", type=click.IntRange(min=0), default=500, show_default=True)
@click.option(
    "--no-dagster", is_flag=True, help="Start the stand-ins and seed, but not dagster dev."
)
def demo_run(events: int, profiles: int, no_dagster: bool) -> None:
    """Embedded defaults end to end: stand-ins, seeded SQLite store, DuckDB logs, `dagster dev`."""
    from segment_sync.demo import run_demo

    sys.exit(run_demo(events, profiles, start_dagster=not no_dagster))


@main.group()
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
def run_outbound(settings_file: str | None, stream: str) -> None:
    """Deliver everything pending now (bounded chunks); exits non-zero if anything failed."""
    from segment_sync.outbound.manual import run_manual_outbound

    loaded = load_or_fail(settings_file)
    ok = run_manual_outbound(
        loaded, stream, run_id=f"manual-{uuid.uuid4().hex[:12]}", echo=click.echo
    )
    sys.exit(0 if ok else 1)


@run.command("inbound")
@settings_option
def run_inbound(settings_file: str | None) -> None:
    """Ingest everything pending in the webhook buffer now; exits non-zero if any item failed."""
    from segment_sync.inbound.manual import run_manual_inbound

    loaded = load_or_fail(settings_file)
    ok = run_manual_inbound(loaded, run_id=f"manual-{uuid.uuid4().hex[:12]}", echo=click.echo)
    sys.exit(0 if ok else 1)


@main.group()
def replay() -> None:
    """Re-queue or resend what failed, after a fix (outbound keeps its messageIds: Segment deduplicates)."""


@replay.command("inbound")
@settings_option
@click.option("--filter", "filter_text", default=None, help="Substring of the error or payload.")
@click.option("--since", default=None, help="Failed at or after: ISO date/time or 30m, 1h, 7d ago.")
@click.option("--until", default=None, help="Failed before: ISO date/time or 30m, 1h, 7d ago.")
def replay_inbound_command(
    settings_file: str | None, filter_text: str | None, since: str | None, until: str | None
) -> None:
    """Put failed buffered webhook events back to pending (attempts reset) for the next run."""
    from segment_sync.inbound.manual import replay_inbound
    from segment_sync.logs.filters import FilterError

    try:
        replay_inbound(load_or_fail(settings_file), filter_text, since, until, echo=click.echo)
    except FilterError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def resync() -> None:
    """Send every row of a time range again."""


_STREAMS = click.Choice(["events", "profiles", "all"])


def _check_times(since: str | None, until: str | None, filter_text: str = "") -> None:
    """A bad filter or time fails here, before any run starts (one line, no traceback)."""
    from segment_sync.logs.filters import FilterError, compile_filter, time_range

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
    from segment_sync.outbound.manual import run_manual_resend
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
    from segment_sync.outbound.manual import run_manual_resend
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


@main.command("serve-webhooks")
@settings_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8703, show_default=True)
@click.option("--insecure", is_flag=True, help="Accept unsigned webhooks (no shared secret set).")
def serve_webhooks(settings_file: str | None, host: str, port: int, insecure: bool) -> None:
    """Receive Segment "Webhooks (Actions)" at POST /segment into the durable buffer."""
    import os

    from segment_sync.inbound.http_limits import ReceiverLimits
    from segment_sync.inbound.receiver import run_receiver

    loaded = load_or_fail(settings_file)
    inbound = loaded.inbound
    secret = loaded.webhook_secret()
    token = None
    if inbound.webhook_token_env:
        token = os.environ.get(inbound.webhook_token_env) or None
        if token is None:
            raise click.ClickException(
                f"inbound.webhook_token_env names {inbound.webhook_token_env}, which is not set: "
                f"export {inbound.webhook_token_env}=<the token in the destination's Headers "
                "field>, or remove the setting"
            )
    if not secret and not token and not insecure:
        raise click.ClickException(
            f"no webhook secret: export {inbound.webhook_secret_env}=<the shared secret "
            "set in Segment's Webhooks (Actions) destination>, or pass --insecure to accept "
            "unsigned requests"
        )
    limits = ReceiverLimits(
        header_timeout_s=inbound.read_timeout_s,
        body_timeout_s=inbound.read_timeout_s,
        max_connections=inbound.max_connections,
        max_unverified_bytes=inbound.max_unverified_bytes,
    )
    run_receiver(
        inbound.buffer_url,
        secret,
        host,
        port,
        insecure,
        inbound.max_body_bytes,
        webhook_token=token,
        allow_unverified_batches=inbound.allow_unverified_batches,
        limits=limits,
    )


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@main.group("standin")
def standin() -> None:
    """Run a LOCAL STAND-IN of Segment or Antavo (never production); each has --help."""


@standin.command("segment", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_segment(args: tuple[str, ...]) -> None:
    """The Segment Tracking API stand-in (`standin segment --help` lists its options)."""
    from segment_sync.standins.segment import main as standin_main

    sys.exit(standin_main(list(args)))


@standin.command("antavo", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_antavo(args: tuple[str, ...]) -> None:
    """The Antavo Events API stand-in (`standin antavo --help` lists its options)."""
    from segment_sync.standins.antavo import main as standin_main

    sys.exit(standin_main(list(args)))


def _attach_subgroups() -> None:
    from segment_sync.logs.cli import logs

    main.add_command(logs)


_attach_subgroups()

if __name__ == "__main__":
    main()
