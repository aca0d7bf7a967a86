"""`segment-sync logs`: the manual's Outbound logs and Inbound logs pages on the command line."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from segment_sync.cli.log_output import echo_entry, rendered
from segment_sync.cli.logs_sql import logs_sql
from segment_sync.cli.options import load_or_fail, settings_option
from segment_sync.logs.browse import (
    DEFAULT_LIMIT,
    entries,
    query_log,
)
from segment_sync.logs.filter_fields import field_names
from segment_sync.logs.filters import FilterError, LogName

if TYPE_CHECKING:
    import duckdb

# One example per log, in its own fields (each one a filter its log accepts).
FILTER_EXAMPLES: dict[LogName, str] = {
    "outbound": "Event type is in track and Status code is not 200",
    "inbound": "Action is in checkout and Status is not success",
}
LOG_HELP: dict[LogName, str] = {
    "outbound": "The outbound log: one row per request sent to Segment (Track and Identify "
    "batches), newest first.",
    "inbound": "The inbound log: one row per Segment event in each request sent to Antavo's "
    "Events API, and per buffered Segment event that failed its mapping or matched none, "
    "newest first.",
}
ROWS: dict[LogName, str] = {"outbound": "requests", "inbound": "rows (events)"}


def filter_help(log: LogName) -> str:
    """--filter's help for `log`: its fields and an example in them."""
    return (
        f"The manual's search wording over {', '.join(field_names(log))}, "
        f"e.g. '{FILTER_EXAMPLES[log]}'. Operators: is, is not, is in (a, b), is not in, "
        "contains, does not contain; Status code also >, <, >=, <= and classes like 5xx. "
        'Quote values containing " and " or commas.'
    )


@click.group("logs")
def logs() -> None:
    """Browse the outbound (to Segment) and inbound (to Antavo) request logs."""


def _list_options(log: LogName) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options of `logs outbound` and `logs inbound`, their help in `log`'s words."""
    options = [
        settings_option,
        click.option("--filter", "filter_text", default="", help=filter_help(log)),
        click.option(
            "--since", default=None, help="From this time: ISO date/time or 30m, 1h, 7d ago."
        ),
        click.option(
            "--until", default=None, help="Before this time (a bare date includes that day)."
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "json", "csv"]),
            default="table",
            show_default=True,
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=0),
            default=DEFAULT_LIMIT,
            show_default=True,
            help=f"Newest N {ROWS[log]}; 0 for all.",
        ),
    ]

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _list_command(direction: LogName) -> click.Command:
    """`logs outbound` / `logs inbound`: the same options, one direction's log and words."""

    def command(**options: Any) -> None:
        destination = options.pop("destination", None)
        if destination is not None:
            _require_destination(destination, options["settings_file"])
        if destination:  # the filter's own field: `Destination is eu`
            wanted = _destination_filter(destination)
            text = options["filter_text"].strip()
            options["filter_text"] = f"{text} and {wanted}" if text else wanted
        _list(direction, **options)

    if direction == "outbound":
        command = click.option(
            "--destination",
            default=None,
            help="Only requests to this one of outbound.destinations (by name).",
        )(command)
    return logs.command(direction, help=LOG_HELP[direction])(_list_options(direction)(command))


def _require_destination(name: str, settings_file: str | None) -> None:
    """--destination names one of outbound.destinations, as `run outbound --destination` must
    (the filter compares names without case); a name no longer configured is still found with
    --filter."""
    names = [n for n in load_or_fail(settings_file).destination_names() if n]
    if name.casefold() not in {n.casefold() for n in names}:
        known = ", ".join(names) or "none: the settings have one destination"
        raise click.BadParameter(
            f"no destination {name!r} in outbound.destinations ({known}); for the requests "
            f"of a destination no longer configured: --filter "
            f"{shlex.quote(_destination_filter(name))}",
            param_hint="--destination",
        )


def _destination_filter(name: str) -> str:
    """The filter field for one destination's requests: `Destination is "eu"`."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'Destination is "{quoted}"'


logs_outbound = _list_command("outbound")
logs_inbound = _list_command("inbound")
logs.add_command(logs_sql)


@logs.command("show")
@click.argument("identifier")
@settings_option
@click.option("--full", is_flag=True, help="Print bodies and customer lists without truncation.")
def logs_show(identifier: str, settings_file: str | None, full: bool) -> None:
    """One request expanded: every column, then its request and response bodies."""
    found = 0
    with _connect(settings_file) as con:
        for log, row in entries(con, identifier):
            if found:
                click.echo()
            found += 1
            echo_entry(log, identifier, row, full)
    if not found:
        raise click.ClickException(
            f"no outbound or inbound log entry has identifier {identifier!r}; "
            "copy one from `segment-sync logs outbound` or `segment-sync logs inbound`"
        )


@logs.command("db")
@settings_option
def logs_db(settings_file: str | None) -> None:
    """Create or refresh the analysts' DuckDB file (views over the log files); print how to open it."""
    import duckdb

    from segment_sync.logs.views import ObjectStoreLogs, ensure_analytics_db

    logs_dir = load_or_fail(settings_file).logs.dir
    try:
        path = ensure_analytics_db(logs_dir)
    except ObjectStoreLogs as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, duckdb.Error) as exc:  # DuckDB's own I/O errors are no OSError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise click.ClickException(
            f"could not write the analysts' database under logs.dir ({logs_dir}): {reason}; "
            "make it a writable folder with free space (or point logs.dir elsewhere), then rerun"
        ) from None
    settings_arg = f" --settings {shlex.quote(settings_file)}" if settings_file else ""
    click.echo(f"analysts' database: {path}")
    click.echo(
        f'query it read-only: segment-sync logs sql{settings_arg} "SELECT * FROM daily_summary"'
    )
    click.echo(f'or in Python:       duckdb.connect("{path}", read_only=True)')
    click.echo(
        "as DataFrames:      from segment_sync.logs import logbook; "
        f'logbook.open(logs_dir="{path.parent}")'
    )
    click.echo("its views read the Parquet log files, so new rows appear without a refresh")


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------


def _list(
    log: LogName,
    *,
    settings_file: str | None,
    filter_text: str,
    since: str | None,
    until: str | None,
    output_format: str,
    limit: int,
) -> None:
    """Query one log and print it in the chosen format."""
    try:
        with _connect(settings_file) as con:
            rows = query_log(con, log, filter_text, since, until, limit)
    except FilterError as exc:
        raise click.ClickException(str(exc)) from None
    more = bool(limit) and len(rows) > limit
    rows = rows[:limit] if limit else rows
    text = rendered(log, rows, output_format)
    click.echo(text, nl=output_format != "csv")
    if more:
        click.echo(
            f"(showing the newest {limit}; more match: raise --limit or narrow --filter/--since)",
            err=True,
        )


# ---------------------------------------------------------------------------------------------
# Settings and the connection
# ---------------------------------------------------------------------------------------------


def _logs_dir(settings_file: str | None) -> Path | str:
    """The logs directory named by the settings; ClickException if unreadable or missing."""
    from segment_sync.logs.object_store import is_object_store

    named = load_or_fail(settings_file).logs.dir
    if is_object_store(named):
        return named
    directory = Path(named)
    if not directory.is_dir():
        from segment_sync.logs.missing import no_logs_folder

        raise click.ClickException(no_logs_folder(directory))
    return directory


@contextmanager
def _connect(settings_file: str | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the log views over the settings' logs directory; a query that meets
    a damaged log file ends in one line naming it and the fix."""
    import duckdb

    from segment_sync.logs.damaged import explain
    from segment_sync.logs.views import connect

    logs_dir = _logs_dir(settings_file)
    try:
        with connect(logs_dir) as con:
            yield con
    except duckdb.Error as exc:
        unreadable = explain(exc, logs_dir)
        if unreadable is None:
            raise
        raise click.ClickException(str(unreadable)) from None


def _add_check() -> None:
    from segment_sync.cli.logs_check import logs_check

    logs.add_command(logs_check)


_add_check()
