"""Where the settings file is found; imports nothing, so every `--help` can name it."""

from pathlib import Path

DEFAULT_SETTINGS_PATH = Path("data/segment_sync.yaml")
SETTINGS_ENV_VAR = "SEGMENT_SYNC_SETTINGS"
