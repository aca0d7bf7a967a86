"""Every `segment-sync` command and its parameters, as they were before commands loaded lazily.

A command added later is added here too; one missing from the CLI fails test_command_tree.
"""

from __future__ import annotations

# "group subcommand": its options (first spelling) and arguments (upper case), in order.
EVERY_COMMAND: dict[str, tuple[str, ...]] = {
    "": (),
    "demo": (),
    "demo env": (),
    "demo run": ("--events", "--profiles", "--no-dagster"),
    "demo seed": ("--settings", "--events", "--profiles", "--customers", "--seed"),
    "instance": (),
    "instance prepare": (),
    "logs": (),
    "logs check": ("--settings", "--quarantine"),
    "logs db": ("--settings",),
    "logs inbound": ("--settings", "--filter", "--since", "--until", "--format", "--limit"),
    "logs outbound": (
        "--settings",
        "--filter",
        "--since",
        "--until",
        "--format",
        "--limit",
        "--destination",
    ),
    "logs show": ("IDENTIFIER", "--settings", "--full"),
    "logs sql": ("QUERY", "--file", "--settings", "--format", "--limit"),
    "mappings": (),
    "mappings preview": ("--settings", "--mapping", "--event"),
    "replay": (),
    "replay inbound": ("--settings", "--filter", "--since", "--until", "--include-unknown"),
    "replay outbound": ("--settings", "--filter", "--since", "--until", "--stream"),
    "resync": (),
    "resync outbound": ("--settings", "--since", "--until", "--stream"),
    "run": (),
    "run inbound": ("--settings", "--dry-run"),
    "run outbound": (
        "--settings",
        "--stream",
        "--follow",
        "--dry-run",
        "--upto",
        "--shard",
        "--destination",
    ),
    "serve-webhooks": ("--settings", "--host", "--port", "--insecure", "--workers"),
    "settings": (),
    "settings check": ("--settings", "--connect"),
    "standin": (),
    "standin antavo": ("ARGS",),
    "standin segment": ("ARGS",),
    "standin segment-public-api": ("ARGS",),
}

# These pass every argument, --help included, to the stand-in's own parser.
PASS_THROUGH = frozenset({"standin antavo", "standin segment", "standin segment-public-api"})
