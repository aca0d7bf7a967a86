"""The settings file: one YAML document, validated on load, secrets only named (env vars).

One module per section (outbound, inbound, stores, operations), the whole file in `root`, its
reading in `loading`; this package's names are what the rest of the code imports.
"""

from segment_sync.settings.base import SettingsError
from segment_sync.settings.inbound import ANTAVO_API_KEY, InboundSettings, MappingSettings
from segment_sync.settings.loading import load_settings, parse_settings, settings_path
from segment_sync.settings.operations import (
    ALERT_KINDS,
    AlertSettings,
    CheckSettings,
    ExecutorSettings,
    MaintenanceSettings,
)
from segment_sync.settings.outbound import SEGMENT_ENDPOINTS, OutboundSettings
from segment_sync.settings.root import Settings
from segment_sync.settings.stores import GeneralSettings, LogsSettings, LoyaltyStoreSettings
from segment_sync.settings_location import DEFAULT_SETTINGS_PATH, SETTINGS_ENV_VAR

__all__ = [
    "ALERT_KINDS",
    "ANTAVO_API_KEY",
    "DEFAULT_SETTINGS_PATH",
    "SEGMENT_ENDPOINTS",
    "SETTINGS_ENV_VAR",
    "AlertSettings",
    "CheckSettings",
    "ExecutorSettings",
    "GeneralSettings",
    "InboundSettings",
    "LogsSettings",
    "LoyaltyStoreSettings",
    "MaintenanceSettings",
    "MappingSettings",
    "OutboundSettings",
    "Settings",
    "SettingsError",
    "load_settings",
    "parse_settings",
    "settings_path",
]
