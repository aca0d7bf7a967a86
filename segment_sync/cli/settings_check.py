"""`segment-sync settings check`: validate the settings file; with --connect, ask the services."""

from __future__ import annotations

import click

from segment_sync.cli.options import load_or_fail, settings_option


@click.group()
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
    from segment_sync.settings.hash import settings_hash

    if loaded.outbound.destinations:
        for name in loaded.destination_names():
            one = loaded.for_destination(name).outbound
            click.echo(
                f"settings OK: destination {name}: region {one.region}, endpoint {one.endpoint}"
            )
        rule = loaded.outbound.route_by
        default = rule.default or "none (a customer without a mapped value fails)"
        click.echo(f"routing: by {rule.attribute}, default {default}")
    else:
        click.echo(
            f"settings OK: region {loaded.outbound.region}, endpoint {loaded.outbound.endpoint}"
        )
    click.echo(
        f"settings hash: {settings_hash(loaded)} (runs record it in sync_runs, secrets left out)"
    )
    for line in status_lines(loaded):
        click.echo(line)
    if connect:
        import asyncio

        from segment_sync.cli.connect_check import connect_checks

        results = asyncio.run(connect_checks(loaded))
        for result in results:
            for line in result.lines():
                click.echo(line)
        failed = [r.name for r in results if r.failed]
        if failed:
            raise click.ClickException(f"--connect proved wrong: {', '.join(failed)} (above)")
