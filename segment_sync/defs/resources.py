"""Dagster resources: the settings file, and secrets read from the environment (EnvVar)."""

from __future__ import annotations

import dagster as dg

from segment_sync.logs.store import LogWriter
from segment_sync.settings import Settings, load_settings


class SettingsResource(dg.ConfigurableResource):
    """The segment-sync settings file (validated on every load)."""

    path: str

    def load(self) -> Settings:
        return load_settings(self.path)

    def log_writer(self) -> LogWriter:
        return LogWriter(self.load().logs.dir)


class SegmentResource(dg.ConfigurableResource):
    """The Segment source's write key; set it with EnvVar so it never shows in the UI."""

    write_key: str


class AntavoResource(dg.ConfigurableResource):
    """Antavo API credentials; set both with EnvVar so they never show in the UI."""

    api_key: str
    api_secret: str
