"""Dry runs and mapping previews put together from the settings: what would be sent, nothing sent.

Shared by the CLI (`run ... --dry-run`, `mappings preview`) and the launchpad (the jobs'
`dry_run` config, `mappings_preview_job`).
"""

from __future__ import annotations

import os

from segment_sync import factory
from segment_sync.directions import mappings_off
from segment_sync.inbound.dry_run import InboundDryRun, pending_items, plan_inbound
from segment_sync.inbound.mapping.preview import (
    Candidate,
    MappingPreview,
    buffered_events,
    event_line,
    preview_mapping,
)
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.dry_run import MAX_SAMPLES, OutboundDryRun, Watermarks, plan_outbound
from segment_sync.outbound.keyless_progress import progress_without_key
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings


def outbound_dry_run(
    settings: Settings, streams: list[Stream], destination: str | None = None
) -> OutboundDryRun:
    """What `run outbound` would send for `streams` now; reads only, the write key never shown.

    With `outbound.destinations`, each destination (or only `destination`) in the order of the
    real run (each stream, then each destination): the rows routed to it, and the rows routed
    nowhere as would-fail (counted once, by the first destination, as the real run logs them).
    """
    names = settings.destination_names() if destination is None else [destination]
    plans = [_one_destination(settings.for_destination(name), streams) for name in names]
    merged = OutboundDryRun()
    for stream in streams:
        merged.streams += [s for p in plans for s in p.streams if s.stream == stream.value]
    merged.samples = [body for p in plans for body in p.samples][:MAX_SAMPLES]
    merged.notes = list(dict.fromkeys(n for p in plans for n in p.notes))  # same note once
    return merged


def _one_destination(settings: Settings, streams: list[Stream]) -> OutboundDryRun:
    """One destination's dry run.

    It sends nothing, so it needs no write key: without one, the progress read is every
    progress kept for this store and endpoint (see keyless_progress.py), and a note says so.
    """
    outbound = settings.outbound
    write_key = os.environ.get(outbound.write_key_env)  # progress is keyed by it
    redactor = Redactor([write_key, *settings.secrets()])
    store = factory.loyalty_store(settings)
    if write_key:
        state: Watermarks = factory.outbound_state(settings, write_key, store_url=store.url)
        note = None
    else:
        keyless = progress_without_key(
            outbound.state_url, store.url, outbound.endpoint, factory.all_shards(settings)
        )
        state, note = keyless, _keyless_note(settings, len(keyless.states))
    try:
        plan = plan_outbound(settings, store, state, streams, redactor)
    finally:
        state.close()
        store.close()
    plan.notes = [redactor.text(n) or "" for n in plan.notes]
    if note:
        plan.notes.insert(0, note)
    return plan


def _keyless_note(settings: Settings, keys: int) -> str:
    """What a dry run without the write key counted from."""
    env, name = settings.outbound.write_key_env, settings.outbound.destination
    where = "outbound.write_key_env" if name is None else f"outbound.destinations[{name}]"
    unset = f"{env} ({where}) is not set"
    if keys == 0:
        return (
            f"{unset}: nothing was sent from this store to this endpoint with any write key, so "
            f"every row counts as pending; a real run needs {env}"
        )
    if keys == 1:
        return (
            f"{unset}: counted from the one progress kept for this store and endpoint; a real "
            f"run needs {env}"
        )
    return (
        f"{unset}: {keys} write keys have progress for this store and endpoint, counted from "
        f"the lowest (the most any of them would send); export {env} to count from its own"
    )


def inbound_dry_run(settings: Settings) -> InboundDryRun | str:
    """What an ingest would send now, or why it sends nothing; claims no buffer item."""
    off = mappings_off(settings)
    if off is not None:
        return off
    inbound = settings.inbound
    redactor = Redactor(settings.secrets())
    buffer = factory.inbound_buffer(settings)
    try:
        return plan_inbound(
            pending_items(buffer, inbound.max_attempts),
            inbound.active_mappings(),
            multi_accounts=inbound.multi_accounts,
            redactor=redactor,
            customers=factory.external_customer_lookup(settings),
            chunk_size=inbound.chunk_size,
        )
    finally:
        buffer.close()


class PreviewError(ValueError):
    """No mapping to preview: none configured, or none by the name asked for."""

    def __init__(self, message: str, *, unknown_name: bool = False) -> None:
        super().__init__(message)
        self.unknown_name = unknown_name


def mapping_previews(
    settings: Settings, name: str | None, given: Candidate | None
) -> list[MappingPreview]:
    """Each chosen mapping's preview on `given`, or on the newest buffered event it matches."""
    chosen = settings.inbound.active_mappings()
    configured = ", ".join(repr(m.name) for m in chosen) or "none"
    if name is not None:
        chosen = [m for m in chosen if m.name == name]
        if not chosen:
            raise PreviewError(
                f"no mapping named {name!r}; configured mappings: {configured}", unknown_name=True
            )
    if not chosen:
        raise PreviewError("no mappings are configured (inbound.mappings is empty)")
    redactor = Redactor(settings.secrets())
    customers = factory.external_customer_lookup(settings)
    buffer = None if given else factory.inbound_buffer(settings)
    try:
        return [
            preview_mapping(
                mapping,
                [given] if given else buffered_events(buffer),
                multi_accounts=settings.inbound.multi_accounts,
                endpoint=settings.inbound.endpoint,
                redactor=redactor,
                customers=customers,
                from_buffer=given is None,
            )
            for mapping in chosen
        ]
    finally:
        if buffer is not None:
            buffer.close()


def preview_lines(p: MappingPreview) -> list[str]:
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
