"""The `segment-sync` command line: the root group and where each command lives.

A command's module is imported only when that command is used, and a command module imports
its implementation only when it runs: `--help` and `settings check` start in a fraction of
the time the sync's imports (Dagster, DuckDB, Arrow, httpx, SQLAlchemy) take.
"""

from __future__ import annotations

import sys

import click

from segment_sync.cli.lazy import LazyCommand, LazyGroup

COMMANDS = {
    "demo": LazyCommand("segment_sync.cli.demo:demo", "Synthetic data and the local demo."),
    "instance": LazyCommand(
        "segment_sync.cli.instance:instance",
        "The Dagster instance every process of a deployment shares.",
    ),
    "logs": LazyCommand(
        "segment_sync.cli.logs:logs",
        "Browse the outbound (to Segment) and inbound (to Antavo) request logs.",
    ),
    "mappings": LazyCommand(
        "segment_sync.cli.mappings:mappings", "Inspect the inbound mappings (inbound.mappings)."
    ),
    "replay": LazyCommand(
        "segment_sync.cli.runs:replay",
        "Re-queue or resend what failed, after a fix (outbound keeps its messageIds: "
        "Segment deduplicates).",
    ),
    "resync": LazyCommand("segment_sync.cli.runs:resync", "Send every row of a time range again."),
    "run": LazyCommand("segment_sync.cli.runs:run", "Run one sync in this process."),
    "serve-webhooks": LazyCommand(
        "segment_sync.cli.webhooks:serve_webhooks",
        'Receive Segment "Webhooks (Actions)" at POST /segment into the durable buffer.',
    ),
    "settings": LazyCommand("segment_sync.cli.settings_check:settings", "Check the settings file."),
    "standin": LazyCommand(
        "segment_sync.cli.standin:standin",
        "Run a LOCAL STAND-IN of Segment, its Public API or Antavo (never production); each "
        "has --help.",
    ),
}


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class of `module` if something imported the module; else None (then no
    exception of it can have been raised, and importing it only to check would be slow)."""
    return getattr(sys.modules.get(module), name, None)


def one_line_for(exc: Exception) -> str | None:
    """The one-line message for an unreachable database, an unwritable logs.dir or a damaged
    log file (naming the setting or the file, and the fix); None for any other error."""
    plain = tuple(
        c
        for c in (
            _loaded("segment_sync.logs.store", "LogWriteError"),
            _loaded("segment_sync.logs.damaged", "UnreadableLogFile"),
            _loaded("segment_sync.db", "DatabasePathError"),
            _loaded("segment_sync.db_urls", "DatabaseUrlError"),
            _loaded("segment_sync.logs.object_store", "LogsUrlError"),
        )
        if c is not None
    )
    if plain and isinstance(exc, plain):
        return str(exc)
    duckdb_error = _loaded("duckdb", "Error")
    if duckdb_error is not None and isinstance(exc, duckdb_error):
        from segment_sync.logs.damaged import explain  # a query over the logs met a damaged file

        unreadable = explain(exc)
        return None if unreadable is None else str(unreadable)
    database_errors = tuple(
        c
        for c in (
            _loaded("sqlalchemy.exc", "OperationalError"),
            _loaded("sqlalchemy.exc", "InterfaceError"),
        )
        if c is not None
    )
    if database_errors and isinstance(exc, database_errors):
        from segment_sync.redaction import mask_url_passwords

        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return (
            f"cannot use the database: {mask_url_passwords(cause)}; check that the server is "
            "running and that loyalty_store.url, outbound.state_url and inbound.buffer_url "
            "in the settings point at it"
        )
    return None


def _interrupted() -> None:
    """Ctrl-C in a command that does not handle it itself: one line and exit 130, as a shell
    reports a job the signal ended (click's own handling says "Aborted!" and exits 1)."""
    from segment_sync.interruptions import CTRL_C_EXIT

    click.echo("\ninterrupted (Ctrl-C)", err=True)
    sys.exit(CTRL_C_EXIT)


class _Commands(LazyGroup):
    """Turns an unreachable database, an unwritable logs.dir or a damaged log file into one
    line naming the setting or the file, and the fix; Ctrl-C into one line and exit 130."""

    def invoke(self, ctx: click.Context):
        from segment_sync.interruptions import is_interruption

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:
            if is_interruption(exc):  # DuckDB's words for a query Ctrl-C stopped
                _interrupted()
            message = one_line_for(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=_Commands, lazy=COMMANDS)
def main() -> None:
    """Two-way sync between a loyalty platform (Antavo) and Twilio Segment."""


if __name__ == "__main__":
    main()
