"""Dry runs put together from the settings: what each direction would send now, nothing sent.

Shared by `segment-sync run ... --dry-run` and the jobs' `dry_run` config in the launchpad.
"""

from __future__ import annotations

import os

from segment_sync import factory
from segment_sync.directions import mappings_off
from segment_sync.inbound.dry_run import InboundDryRun, pending_payloads, plan_inbound
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.dry_run import OutboundDryRun, plan_outbound
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings


def outbound_dry_run(settings: Settings, streams: list[Stream]) -> OutboundDryRun:
    """What `run outbound` would send for `streams` now; reads only, the write key never shown."""
    write_key = settings.write_key()  # progress is keyed by its fingerprint
    redactor = Redactor([write_key])
    store = factory.loyalty_store(settings)
    state = factory.outbound_state(settings, write_key, store_url=store.url)
    try:
        plan = plan_outbound(settings, store, state, streams, redactor)
    finally:
        state.close()
        store.close()
    plan.notes = [redactor.text(n) or "" for n in plan.notes]
    return plan


def inbound_dry_run(settings: Settings) -> InboundDryRun | str:
    """What an ingest would send now, or why it sends nothing; claims no buffer item."""
    off = mappings_off(settings)
    if off is not None:
        return off
    inbound = settings.inbound
    redactor = Redactor(os.environ.get(name) for name in settings.secret_env_names())
    buffer = factory.inbound_buffer(settings)
    try:
        return plan_inbound(
            pending_payloads(buffer, inbound.max_attempts),
            inbound.active_mappings(),
            multi_accounts=inbound.multi_accounts,
            redactor=redactor,
            customers=factory.external_customer_lookup(settings),
            chunk_size=inbound.chunk_size,
        )
    finally:
        buffer.close()
