"""What every `segment-sync` command shares: the --settings option and loading it.

Light on purpose: the settings (pydantic, the mapping parser) load when a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from segment_sync.settings_location import SETTINGS_ENV_VAR

if TYPE_CHECKING:
    from segment_sync.settings import Settings

settings_option = click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Settings file (default: ${SETTINGS_ENV_VAR}, else data/segment_sync.yaml).",
)


def load_or_fail(settings_file: str | None) -> Settings:
    """The validated settings, or a ClickException carrying every problem (no traceback)."""
    from segment_sync.settings import SettingsError, load_settings

    try:
        return load_settings(settings_file)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
