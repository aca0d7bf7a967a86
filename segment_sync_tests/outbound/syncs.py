"""The outbound sync the tests drive: real settings, real log writer, short test backoff."""

from __future__ import annotations

from pathlib import Path

from segment_sync import factory
from segment_sync.logs.store import LogWriter
from segment_sync.outbound.sync import OutboundSync
from segment_sync.settings import Settings, load_settings
from segment_sync_tests.conftest import WRITE_KEY


def outbound_sync(settings: Settings | Path, key: str = WRITE_KEY) -> OutboundSync:
    """An OutboundSync on these settings (or the settings file at this path)."""
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    return factory.outbound_sync(settings, key, LogWriter(settings.logs.dir), backoff_base_s=0.01)


def thirty_events_and_a_one_request_outage(
    write_settings, segment_standin
) -> tuple[Path, Settings]:
    """30 track events in the store; the stand-in fails the next request; no retries, so the
    first run fails and the next one delivers (the outage-then-recovery case)."""
    from segment_sync.loyalty.records import NewEvent
    from segment_sync.loyalty.store import LoyaltyStore

    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    settings = load_settings(path)
    events = [NewEvent(f"c-{i}", "point_add", {}) for i in range(30)]
    LoyaltyStore(settings.loyalty_store.url).append_events(events)
    segment_standin.set_faults(outage_requests=1)
    return path, settings
