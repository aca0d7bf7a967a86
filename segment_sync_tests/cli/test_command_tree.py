"""Loading commands lazily loses none: the same commands, options and help texts as before."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.cli.lazy import LazyGroup
from segment_sync.cli.main import COMMANDS
from segment_sync_tests.cli.command_tree import EVERY_COMMAND, PASS_THROUGH

WIDTHS = (40, 80, 120, 200)


def _walk(command: click.Command, path: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every command under `command` with its parameters, as click resolves them."""
    params = tuple(
        p.opts[0] if isinstance(p, click.Option) else (p.name or "").upper() for p in command.params
    )
    tree = {" ".join(path): params}
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{' '.join((*path, name))} is listed but does not load"
            tree |= _walk(sub, (*path, name))
    return tree


def test_the_command_tree_holds_every_command_with_its_options() -> None:
    assert _walk(main, ()) == EVERY_COMMAND


@pytest.mark.parametrize("path", sorted(EVERY_COMMAND))
def test_every_help_answers_and_names_its_subcommands_and_options(path: str) -> None:
    words = path.split()
    result = CliRunner().invoke(main, [*words, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if path in PASS_THROUGH:  # the stand-in's own argparse help
        assert "usage: python -m segment_sync.standins." in result.output
        assert "--port" in result.output
        return
    assert result.output.startswith("Usage: ")
    for param in EVERY_COMMAND[path]:
        assert param in result.output
    below = [p.split()[-1] for p in EVERY_COMMAND if p.split()[:-1] == words and p]
    for name in below:
        assert f"\n  {name} " in result.output


@pytest.mark.parametrize("width", WIDTHS)
def test_the_top_level_listing_is_what_each_command_says_of_itself(width: int) -> None:
    """The registry's summaries, shown before any command is imported, read exactly as click
    shortens each command's own help (at any terminal width)."""
    lazy = LazyGroup(name="segment-sync", help=main.help, lazy=COMMANDS)
    eager = click.Group(
        name="segment-sync",
        help=main.help,
        commands={name: entry.load() for name, entry in COMMANDS.items()},
    )
    shown = {}
    for group in (lazy, eager):
        ctx = click.Context(group, info_name="segment-sync", terminal_width=width)
        shown[group] = group.get_help(ctx)
    assert not lazy.commands, "formatting the listing imported a command"
    assert shown[lazy] == shown[eager]


def test_the_registry_names_every_top_level_command_once() -> None:
    top = {path.split()[0] for path in EVERY_COMMAND if path}
    assert set(COMMANDS) == top
    for name, entry in COMMANDS.items():
        assert entry.load().name == name
