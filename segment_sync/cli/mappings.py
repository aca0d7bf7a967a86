"""`segment-sync mappings preview`: the Antavo request a mapping would make, nothing sent."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from segment_sync import factory
from segment_sync.cli.options import load_or_fail, settings_option
from segment_sync.inbound.mapping.preview import (
    Candidate,
    MappingPreview,
    buffered_events,
    event_line,
    preview_mapping,
)
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings


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
    loaded = load_or_fail(settings_file)
    chosen = loaded.inbound.active_mappings()
    configured = ", ".join(repr(m.name) for m in chosen) or "none"
    if name is not None:
        chosen = [m for m in chosen if m.name == name]
        if not chosen:
            raise click.BadParameter(
                f"no mapping named {name!r}; configured mappings: {configured}",
                param_hint="'--mapping'",
            )
    if not chosen:
        raise click.ClickException("no mappings are configured (inbound.mappings is empty)")
    given = _read_event(event_file) if event_file else None
    redactor = Redactor(os.environ.get(env) for env in loaded.secret_env_names())
    customers = factory.external_customer_lookup(loaded)
    buffer = None if given else factory.inbound_buffer(loaded)
    previews = []
    try:
        for mapping in chosen:
            candidates = [given] if given else buffered_events(buffer)
            previews.append(
                preview_mapping(
                    mapping,
                    candidates,
                    multi_accounts=loaded.inbound.multi_accounts,
                    endpoint=loaded.inbound.endpoint,
                    redactor=redactor,
                    customers=customers,
                    from_buffer=given is None,
                )
            )
    finally:
        if buffer is not None:
            buffer.close()
    for p in previews:
        for line in preview_lines(p, loaded):
            click.echo(line)
    sys.exit(0 if all(p.request for p in previews) else 1)


def preview_lines(p: MappingPreview, settings: Settings) -> list[str]:
    """The printed preview of one mapping."""
    lines = [f"mapping {p.mapping!r} ({p.action}{'' if p.enabled else ', disabled'})"]
    if p.event is not None:
        lines.append(f"  event: {event_line(p.event)}")
    if p.request is not None:
        r = p.request
        lines += [
            f"  request: {r.method} {r.path}  ({r.url}; not sent)",
            "  headers: Content-Type: application/json; "
            "Authorization: [REDACTED] (Escher ANTAVO-HMAC-SHA256, signed when sent)",
            "  body:",
            *(f"    {line}" for line in r.body.splitlines()),
        ]
    else:
        lines.append("  no request:")
    lines += [f"  {reason}" for reason in p.reasons]
    return lines


def _read_event(path: str) -> Candidate:
    """The event file as a candidate; a file that is not one JSON object is a clear error."""
    try:
        payload: Any = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"--event {path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise click.ClickException(f"--event {path}: cannot read it ({exc.strerror})") from None
    if not isinstance(payload, dict):
        raise click.ClickException(
            f"--event {path}: expected one Segment event (a JSON object), got "
            f"{type(payload).__name__}"
        )
    return Candidate(f"file {path}", payload)
