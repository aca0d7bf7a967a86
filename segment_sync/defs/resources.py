"""Dagster resources: the settings file, and the clients built from secrets read by EnvVar."""

from __future__ import annotations

import dagster as dg

from segment_sync import factory
from segment_sync.inbound.ingest import InboundIngest
from segment_sync.logs.store import LogWriter
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.state import OutboundState
from segment_sync.outbound.sync import OutboundSync
from segment_sync.settings import Settings, load_settings


class SettingsResource(dg.ConfigurableResource):
    """The segment-sync settings file; an op loads (and validates) it once."""

    path: str

    def load(self) -> Settings:
        return load_settings(self.path)


class SegmentResource(dg.ConfigurableResource):
    """The Segment source's write key (set it with EnvVar so it never shows in the UI)."""

    write_key: str

    def outbound_sync(
        self, settings: Settings, logs: LogWriter, shard: Shard | None = None
    ) -> OutboundSync:
        """The outbound sync towards this source's Segment endpoint (of one shard, if given)."""
        return factory.outbound_sync(settings, self.write_key, logs, shard=shard)

    def outbound_state(self, settings: Settings) -> OutboundState:
        return factory.outbound_state(settings, self.write_key)


class AntavoResource(dg.ConfigurableResource):
    """Antavo API credentials (set both with EnvVar so they never show in the UI)."""

    api_key: str
    api_secret: str

    def inbound_ingest(self, settings: Settings, logs: LogWriter) -> InboundIngest:
        """The ingest that registers buffered events with this Antavo account."""
        return factory.inbound_ingest(settings, self.api_key, self.api_secret, logs)
