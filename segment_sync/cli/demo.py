"""`segment-sync demo seed|run`: synthetic data and the local demo."""

from __future__ import annotations

import sys

import click

from segment_sync.cli.options import load_or_fail, settings_option

# Synthetic data is for trying things out: a typo of a few digits must not start a seeding that
# never ends (10^20 events) or build every customer in memory first. Ten times the largest
# backlog the benchmarks use.
MAX_DEMO_ROWS = 100_000_000
MAX_DEMO_CUSTOMERS = 10_000_000


@click.group()
def demo() -> None:
    """Synthetic data and the local demo."""


@demo.command("seed")
@settings_option
@click.option("--events", type=click.IntRange(0, MAX_DEMO_ROWS), default=1000, show_default=True)
@click.option("--profiles", type=click.IntRange(0, MAX_DEMO_ROWS), default=200, show_default=True)
@click.option(
    "--customers", type=click.IntRange(1, MAX_DEMO_CUSTOMERS), default=100, show_default=True
)
@click.option("--seed", "seed_value", type=int, default=7, show_default=True)
def demo_seed(
    settings_file: str | None, events: int, profiles: int, customers: int, seed_value: int
) -> None:
    """Append realistic synthetic loyalty events and profile changes to the loyalty store."""
    from segment_sync import factory
    from segment_sync.loyalty.demo import seed

    store = factory.loyalty_store(load_or_fail(settings_file))
    seed(store, events, profiles, customers, seed_value)
    click.echo(
        f"seeded {events} loyalty events and {profiles} profile changes for {customers} customers"
    )


@demo.command("run")
@click.option("--events", type=click.IntRange(0, MAX_DEMO_ROWS), default=2000, show_default=True)
@click.option("--profiles", type=click.IntRange(0, MAX_DEMO_ROWS), default=500, show_default=True)
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
