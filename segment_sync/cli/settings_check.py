"""`segment-sync settings check`: validate the settings file, optionally the write key too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from segment_sync.cli.options import load_or_fail, settings_option

if TYPE_CHECKING:
    from segment_sync.settings import Settings


@click.group()
def settings() -> None:
    """Check the settings file."""


@settings.command("check")
@settings_option
@click.option("--connect", is_flag=True, help="Also verify the write key against the region.")
def settings_check(settings_file: str | None, connect: bool) -> None:
    """Validate the settings file; with --connect, ask Segment whether the write key is accepted."""
    from segment_sync.directions import status_lines
    from segment_sync.settings import SettingsError

    loaded = load_or_fail(settings_file)
    click.echo(f"settings OK: region {loaded.outbound.region}, endpoint {loaded.outbound.endpoint}")
    for line in status_lines(loaded):
        click.echo(line)
    if connect:
        import asyncio

        try:
            message = asyncio.run(check_write_key(loaded))
        except (SettingsError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(message)


async def check_write_key(settings: Settings) -> str:
    """Does Segment accept the write key at the configured region? RuntimeError says what not."""
    from segment_sync.segment.client import SegmentClient

    outbound = settings.outbound
    async with SegmentClient(outbound.endpoint, settings.write_key(), timeout_s=10.0) as client:
        answer = await client.check_write_key()
    if answer.status_code is None:
        raise RuntimeError(f"cannot reach {client.url}: {answer.error}")
    said = (answer.response_body or "")[:300]
    if answer.status_code in (401, 403):
        raise RuntimeError(
            f"{client.url} refused the write key (HTTP {answer.status_code}): check "
            f"{outbound.write_key_env} holds the source's write key and that outbound.region "
            f"({outbound.region}) is the workspace's region. Answer: {said}"
        )
    if answer.error:
        raise RuntimeError(f"{client.url} answered {answer.error}")
    return f"write key accepted by {client.url} (region {outbound.region})"
