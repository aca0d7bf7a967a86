"""The `segment-sync` command line."""

from __future__ import annotations

import asyncio
import sys

import click

from segment_sync import factory
from segment_sync.cli.options import load_or_fail, settings_option


class _Commands(click.Group):
    """Turns an unreachable database, an unwritable logs.dir or a damaged log file into one
    line naming the setting or the file, and the fix."""

    def invoke(self, ctx: click.Context):
        import duckdb
        from sqlalchemy.exc import InterfaceError, OperationalError

        from segment_sync.db import DatabasePathError
        from segment_sync.logs.damaged import UnreadableLogFile, explain
        from segment_sync.logs.store import LogWriteError

        try:
            return super().invoke(ctx)
        except (LogWriteError, UnreadableLogFile, DatabasePathError) as exc:
            raise click.ClickException(str(exc)) from None
        except duckdb.Error as exc:  # a query over the logs that met a damaged file
            unreadable = explain(exc)
            if unreadable is None:
                raise
            raise click.ClickException(str(unreadable)) from None
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
@click.option(
    "--connect",
    is_flag=True,
    help="Also ask Segment and Antavo: the endpoint, the write key's region (with a Public API "
    "token) and the Antavo key, secret and stack.",
)
def settings_check(settings_file: str | None, connect: bool) -> None:
    """Validate the settings file; with --connect, prove what can be proven against Segment and
    Antavo, and say how to verify the rest. Exits non-zero only for what it proved wrong."""
    from segment_sync.directions import status_lines

    loaded = load_or_fail(settings_file)
    click.echo(f"settings OK: region {loaded.outbound.region}, endpoint {loaded.outbound.endpoint}")
    for line in status_lines(loaded):
        click.echo(line)
    if connect:
        from segment_sync.cli.connect_check import connect_checks

        results = asyncio.run(connect_checks(loaded))
        for result in results:
            for line in result.lines():
                click.echo(line)
        failed = [r.name for r in results if r.failed]
        if failed:
            raise click.ClickException(f"--connect proved wrong: {', '.join(failed)} (above)")


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

    store = factory.loyalty_store(load_or_fail(settings_file))
    seed(store, events, profiles, customers, seed_value)
    click.echo(
        f"seeded {events} loyalty events and {profiles} profile changes for {customers} customers"
    )


@demo.command("run")
@click.option("--events", type=click.IntRange(min=0), default=2000, show_default=True)
@click.option("--profiles", type=click.IntRange(min=0), default=500, show_default=True)
@click.option(
    "--no-dagster",
    is_flag=True,
    help="Start the stand-ins and the receiver and seed, but not dagster dev (Ctrl-C stops).",
)
def demo_run(events: int, profiles: int, no_dagster: bool) -> None:
    """Embedded defaults end to end: stand-ins, seeded SQLite store, DuckDB logs, `dagster dev`.

    The store is seeded only while it is empty (`demo seed` adds more); Ctrl-C stops it all.
    """
    from segment_sync.demo import run_demo
    from segment_sync.demo_guard import DemoRefused

    try:
        code = run_demo(events, profiles, start_dagster=not no_dagster)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@demo.command("env")
def demo_env() -> None:
    """Print the running demo's environment as `export` lines for another shell.

    eval "$(segment-sync demo env)" there gives it the demo's settings file, Dagster home and
    the LOCAL STAND-INS' demo secrets (public, not credentials). Nothing is printed, and the
    exit code is 1, when no demo runs or its settings send to real Segment or Antavo endpoints.
    """
    from segment_sync.demo_env import DemoEnvRefused, demo_env_lines, settings_file_in_use

    try:
        lines = demo_env_lines(settings_file_in_use())
    except DemoEnvRefused as exc:
        raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


@main.group()
def instance() -> None:
    """The Dagster instance every process of a deployment shares."""


@instance.command("prepare")
def instance_prepare() -> None:
    """Create or migrate $DAGSTER_HOME's storage once, safe to run from many processes at once.

    Run it before the webserver, the daemon and Celery workers start on a new PostgreSQL
    database (deploy/celery/worker.sh does): they would otherwise race to create its tables.
    """
    from segment_sync.defs.instance_storage import InstancePrepareError, prepare_instance

    try:
        click.echo(prepare_instance())
    except InstancePrepareError as exc:
        raise click.ClickException(str(exc)) from None


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@main.group("standin")
def standin() -> None:
    """Run a LOCAL STAND-IN of Segment, its Public API or Antavo (never production); each has
    --help."""


@standin.command("segment", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_segment(args: tuple[str, ...]) -> None:
    """The Segment Tracking API stand-in (`standin segment --help` lists its options)."""
    from segment_sync.standins.segment_cli import main as standin_main

    sys.exit(standin_main(list(args)))


@standin.command("segment-public-api", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_segment_public_api(args: tuple[str, ...]) -> None:
    """Segment's Public API (workspace, sources) for the region check (`--help` lists options)."""
    from segment_sync.standins.segment_public_api_cli import main as standin_main

    sys.exit(standin_main(list(args)))


@standin.command("antavo", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_antavo(args: tuple[str, ...]) -> None:
    """The Antavo Events API stand-in (`standin antavo --help` lists its options)."""
    from segment_sync.standins.antavo_cli import main as standin_main

    sys.exit(standin_main(list(args)))


def _attach_groups() -> None:
    from segment_sync.cli.logs import logs
    from segment_sync.cli.mappings import mappings
    from segment_sync.cli.runs import replay, resync, run
    from segment_sync.cli.webhooks import serve_webhooks

    for command in (run, replay, resync, serve_webhooks, logs, mappings):
        main.add_command(command)


_attach_groups()

if __name__ == "__main__":
    main()
