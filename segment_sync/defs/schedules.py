"""How the code location schedules its jobs: UTC, on by default, runs tagged as scheduled."""

from __future__ import annotations

import dagster as dg

from segment_sync.defs.tags import TRIGGER_TAG


def schedule_for(job: dg.JobDefinition, cron: str, description: str) -> dg.ScheduleDefinition:
    """`<job>_schedule` (the job's name without `_job`), running in a real deployment."""
    return dg.ScheduleDefinition(
        name=job.name.removesuffix("_job") + "_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={TRIGGER_TAG: "schedule"},
        description=description,
    )
