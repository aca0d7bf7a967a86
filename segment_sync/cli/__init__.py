"""Every `segment-sync` command: one module per group, the shared --settings option in options."""

from segment_sync.cli.main import main

__all__ = ["main"]
