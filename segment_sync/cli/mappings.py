"""`segment-sync mappings preview`: the Antavo request a mapping would make, nothing sent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from segment_sync.cli.options import load_or_fail, settings_option

if TYPE_CHECKING:
    from segment_sync.inbound.mapping.preview import Candidate


@click.group()
def mappings() -> None:
    """Inspect the inbound mappings (inbound.mappings)."""


@mappings.command("preview")
@settings_option
@click.option("--mapping", "name", default=None, help="Only this mapping (default: every one).")
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A Segment event as a JSON file (default: the newest buffered event that matches).",
)
def preview(settings_file: str | None, name: str | None, event_file: str | None) -> None:
    """Show the event a mapping would use and the exact Antavo request it would send.

    Without --event, the newest event in the webhook buffer that the trigger matches is used
    (Segment's "Load event from source"); the buffer is only read. Nothing is sent to Antavo.
    Exits 1 when some mapping would produce no request.
    """
    from segment_sync.dry_runs import PreviewError, mapping_previews, preview_lines

    loaded = load_or_fail(settings_file)
    given = _read_event(event_file) if event_file else None
    try:
        previews = mapping_previews(loaded, name, given)
    except PreviewError as exc:
        if exc.unknown_name:
            raise click.BadParameter(str(exc), param_hint="'--mapping'") from None
        raise click.ClickException(str(exc)) from None
    for p in previews:
        for line in preview_lines(p):
            click.echo(line)
    sys.exit(0 if all(p.request for p in previews) else 1)


def _read_event(path: str) -> Candidate:
    """The event file as a candidate; a file that is not one readable event is a clear error."""
    from segment_sync.inbound.item_gate import UnreadableEvent, decode_event
    from segment_sync.inbound.mapping.preview import Candidate

    try:
        payload = decode_event(Path(path).read_bytes())
    except UnreadableEvent as exc:
        raise click.ClickException(f"--event {path}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"--event {path}: cannot read it ({exc.strerror})") from None
    return Candidate(f"file {path}", payload)
