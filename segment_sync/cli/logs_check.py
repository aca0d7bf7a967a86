"""`segment-sync logs check`: find the log files that cannot be read, and move them aside."""

from __future__ import annotations

from pathlib import Path

import click

from segment_sync.cli.options import load_or_fail, settings_option


@click.command("check")
@settings_option
@click.option(
    "--quarantine",
    "move",
    is_flag=True,
    help="Move every unreadable log file into logs.dir's quarantine/ folder.",
)
def logs_check(settings_file: str | None, move: bool) -> None:
    """Read every log file in full; list the ones that cannot be read (exit 1 while any stays)."""
    # Imported here: DuckDB and pyarrow load only when the command runs, not for --help.
    from segment_sync.logs.damaged import QUARANTINE_DIR, log_files, quarantine, unreadable_files

    named = load_or_fail(settings_file).logs.dir
    if named.startswith("s3://"):
        raise click.ClickException(
            "logs check reads a local logs.dir; on S3 the hourly log_maintenance_job moves "
            "unreadable files under the prefix's quarantine/ and names them in its run"
        )
    logs_dir = Path(named)
    if not logs_dir.is_dir():
        from segment_sync.logs.missing import no_logs_folder

        raise click.ClickException(no_logs_folder(logs_dir, "logs.dir"))
    checked = len(log_files(logs_dir))
    bad = unreadable_files(logs_dir, deep=True)
    click.echo(f"checked {checked} log file(s) under {logs_dir}: {len(bad)} unreadable")
    for path, reason in bad:
        if move:
            click.echo(f"  moved {path} to {quarantine(logs_dir, path)} ({reason})")
        else:
            click.echo(f"  {path}: {reason}")
    if bad and not move:
        raise click.ClickException(
            "the log views fail while these files stay: move them out of logs.dir, or rerun "
            f"with --quarantine to move them into {logs_dir / QUARANTINE_DIR}"
        )
