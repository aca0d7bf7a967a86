"""`segment-sync logs sql`: read-only SQL over the analysts' views, no `duckdb` binary needed.

DuckDB is imported when the command runs, never for `--help`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO, TYPE_CHECKING

import click

from segment_sync.cli.options import load_or_fail, settings_option
from segment_sync.interruptions import is_interruption

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import duckdb

# The views read_only.VIEWS names (a test keeps the two lists equal; importing it would
# import DuckDB for --help).
VIEW_NAMES = (
    "outbound_log",
    "outbound_messages",
    "inbound_log",
    "inbound_items",
    "sync_runs",
    "daily_summary",
)
PROMPT = "logs> "
CONTINUATION_PROMPT = "  ...> "


HELP = f"""Run read-only SQL over the log views; print a table, CSV or JSON.

\b
The SQL comes from QUERY, from --file, or else from standard input; on a terminal,
with neither, an interactive prompt opens (end statements with ';', Ctrl-D quits).
Views: {", ".join(VIEW_NAMES)}.
Writes are refused: the views are opened read-only and never block a run.

\b
Examples:
  segment-sync logs sql "SELECT * FROM daily_summary"
  segment-sync logs sql --format csv --file failures.sql > failures.csv
"""


@click.command("sql", help=HELP)
@click.argument("query", required=False)
@click.option(
    "--file",
    "sql_file",
    type=click.File("r", encoding="utf-8"),
    help="Read the SQL from this file ('-': standard input).",
)
@settings_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="At most N rows; 0 for all. Default: 1000 in a table, all in CSV and JSON.",
)
def logs_sql(
    query: str | None,
    sql_file: IO[str] | None,
    settings_file: str | None,
    output_format: str,
    limit: int | None,
) -> None:
    if query is not None and sql_file is not None:
        raise click.UsageError("give the SQL as QUERY or with --file, not both")
    if query is None and sql_file is None and sys.stdin.isatty():
        from segment_sync.logs.read_only import refresh_views

        logs_dir = load_or_fail(settings_file).logs.dir
        with _open(settings_file) as con:  # each statement sees files published since (S3)
            prompt_loop(con, output_format, limit, lambda: refresh_views(con, logs_dir), logs_dir)
        return
    sql = query if query is not None else (sql_file or click.get_text_stream("stdin")).read()
    if not sql.strip():
        raise click.UsageError('no SQL given: e.g. segment-sync logs sql "SELECT 1"')
    with _open(settings_file) as con:
        _run_and_print(con, sql, output_format, limit, load_or_fail(settings_file).logs.dir)


def _open(settings_file: str | None) -> duckdb.DuckDBPyConnection:
    """The read-only views over the settings' logs.dir; ClickException if there are none."""
    from segment_sync.logs.read_only import LogsSQLError, NoLogsError, open_read_only

    logs_dir = load_or_fail(settings_file).logs.dir
    try:
        return open_read_only(logs_dir)
    except (NoLogsError, LogsSQLError) as exc:
        raise click.ClickException(str(exc)) from None


def _run_and_print(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    output_format: str,
    limit: int | None,
    logs_dir: Path | str | None = None,
) -> None:
    """Run `sql` and print its result; ClickException (one line) for an error or a write,
    naming the damaged log file when one is to blame."""
    import duckdb

    from segment_sync.cli.sql_output import print_result
    from segment_sync.logs.read_only import LogsSQLError, run_sql, sql_error

    try:
        cursor = run_sql(con, sql, logs_dir=logs_dir)
        printed = print_result(cursor, output_format, limit, click.echo)
    except LogsSQLError as exc:
        raise click.ClickException(str(exc)) from None
    except duckdb.Error as exc:  # raised while fetching, e.g. a page that cannot be decoded
        if is_interruption(exc):
            raise KeyboardInterrupt from None
        raise click.ClickException(str(sql_error(exc, logs_dir))) from None
    except OverflowError as exc:  # an interval longer than a timedelta holds (DuckDB's is fine)
        raise click.ClickException(
            f"a value of the result cannot be shown ({exc}); cast it to text, e.g. i::VARCHAR"
        ) from None
    if printed.more:
        click.echo(
            f"(showing the first {printed.rows} rows; more follow: --limit 0 shows all, "
            "--format csv or json prints all by default)",
            err=True,
        )


def prompt_loop(
    con: duckdb.DuckDBPyConnection,
    output_format: str,
    limit: int | None,
    before_each: Callable[[], None] = lambda: None,
    logs_dir: Path | str | None = None,
) -> None:
    """Read statements from the terminal until Ctrl-D or `.quit`; an error ends one statement,
    not the session. `before_each` runs before each statement (a new listing of S3 logs)."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()
    click.echo(
        f"Read-only SQL over the logs. Views: {', '.join(VIEW_NAMES)}.\n"
        "End a statement with ';'. .tables lists the views, .quit or Ctrl-D leaves.",
        err=True,
    )
    lines: list[str] = []
    while True:
        try:
            line = input(CONTINUATION_PROMPT if lines else PROMPT)
        except EOFError:
            click.echo(err=True)
            return
        except KeyboardInterrupt:
            click.echo("^C", err=True)
            lines = []
            continue
        stripped = line.strip()
        if not lines and stripped.startswith("."):
            if stripped in (".quit", ".exit"):
                return
            if stripped == ".tables":
                click.echo("\n".join(VIEW_NAMES))
            else:
                click.echo(f"Error: unknown command {stripped!r}; .tables or .quit", err=True)
            continue
        if stripped or lines:
            lines.append(line)
        if stripped.endswith(";"):
            sql, lines = "\n".join(lines), []
            try:
                before_each()
                _run_and_print(con, sql, output_format, limit, logs_dir)
            except KeyboardInterrupt:  # during the query or the search for a damaged file
                click.echo("^C", err=True)
            except RuntimeError as exc:
                if not is_interruption(exc):  # DuckDB's words for a query Ctrl-C stopped
                    raise
                click.echo("^C", err=True)
            except OSError as exc:  # the logs' storage could not be listed again
                click.echo(f"Error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", err=True)
            except click.ClickException as exc:
                click.echo(f"Error: {exc.format_message()}", err=True)
