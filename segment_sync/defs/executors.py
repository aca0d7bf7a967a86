"""The executor every job runs its steps with, chosen by the settings' `executor.kind`."""

from __future__ import annotations

import dagster as dg

from segment_sync.settings import ExecutorSettings


def build_executor(settings: ExecutorSettings) -> dg.ExecutorDefinition | None:
    """Celery's executor reading its URLs from the named variables; None keeps Dagster's default."""
    if settings.kind != "celery":
        return None
    from dagster_celery import celery_executor  # only deployments on Celery need it loaded

    return celery_executor.configured(
        {
            "broker": {"env": settings.celery_broker_url_env},
            "backend": {"env": settings.celery_backend_url_env},
        },
        name="celery",
    )
