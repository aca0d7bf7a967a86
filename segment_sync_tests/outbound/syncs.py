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
