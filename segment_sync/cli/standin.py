"""`segment-sync standin segment|segment-public-api|antavo`: a local stand-in; its own options
pass through."""

from __future__ import annotations

import sys

import click

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group("standin")
def standin() -> None:
    """Run a LOCAL STAND-IN of Segment, its Public API or Antavo (never production); each has
    --help."""


@standin.command("segment", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_segment(args: tuple[str, ...]) -> None:
    """The Segment Tracking API stand-in (`standin segment --help` lists its options)."""
    from segment_sync.standins.segment_cli import main as standin_main

    sys.exit(standin_main(list(args)))


@standin.command("segment-public-api", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_segment_public_api(args: tuple[str, ...]) -> None:
    """Segment's Public API (workspace, sources) for the region check (`--help` lists options)."""
    from segment_sync.standins.segment_public_api_cli import main as standin_main

    sys.exit(standin_main(list(args)))


@standin.command("antavo", context_settings=_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standin_antavo(args: tuple[str, ...]) -> None:
    """The Antavo Events API stand-in (`standin antavo --help` lists its options)."""
    from segment_sync.standins.antavo_cli import main as standin_main

    sys.exit(standin_main(list(args)))
