"""`segment-sync instance prepare`: the Dagster instance's storage, created once."""

from __future__ import annotations

import click


@click.group()
def instance() -> None:
    """The Dagster instance every process of a deployment shares."""


@instance.command("prepare")
def instance_prepare() -> None:
    """Create or migrate $DAGSTER_HOME's storage once, safe to run from many processes at once.

    Run it before the webserver, the daemon and Celery workers start on a new PostgreSQL
    database (deploy/celery/worker.sh does): they would otherwise race to create its tables.
    """
    from segment_sync.defs.instance_storage import InstancePrepareError, prepare_instance

    try:
        click.echo(prepare_instance())
    except InstancePrepareError as exc:
        raise click.ClickException(str(exc)) from None
