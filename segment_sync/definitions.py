"""The Dagster code location: `dagster dev` loads `defs` from here (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from segment_sync.defs.alerts import build_alert_sensors
from segment_sync.defs.assets import LOG_TABLE_SPECS, source_specs
from segment_sync.defs.checks import (
    LOG_CHECKS,
    LOG_CHECKS_CADENCE,
    build_log_checks_job,
    log_checks_job,
    log_checks_schedule,
)
from segment_sync.defs.destination_checks import build_log_checks
from segment_sync.defs.destinations import (
    build_destination_sensors,
    build_destinations_asset,
    build_destinations_job,
    destination_resources,
    log_table_specs,
)
from segment_sync.defs.executors import build_executor
from segment_sync.defs.inbound import (
    inbound_buffer_sensor,
    inbound_ingest_job,
    inbound_replay_job,
    ingest_inbound_buffer,
)
from segment_sync.defs.maintenance import log_maintenance_job, log_maintenance_schedule
from segment_sync.defs.outbound import (
    build_outbound_asset,
    build_outbound_job,
    outbound_sync_job,
)
from segment_sync.defs.outbound_resend import (
    build_resend_jobs,
    outbound_replay_job,
    outbound_resync_job,
)
from segment_sync.defs.outbound_sensors import build_outbound_sensors
from segment_sync.defs.previews import mappings_preview_job
from segment_sync.defs.reconcile import (
    build_reconcile_job,
    outbound_reconcile_job,
    reconcile_schedule,
)
from segment_sync.defs.resources import AntavoResource, SegmentResource, SettingsResource
from segment_sync.defs.run_results import build_run_failure_sensor
from segment_sync.defs.schedules import schedule_for
from segment_sync.settings import load_settings, settings_path

# Every run of these jobs becomes a `sync_runs` row (the checks job only reads the logs).
OTHER_SYNC_JOBS = [
    outbound_replay_job,
    outbound_resync_job,
    inbound_ingest_job,
    outbound_reconcile_job,
    log_maintenance_job,
]
SYNC_JOBS = [outbound_sync_job, *OTHER_SYNC_JOBS]


def build_definitions(path: str | None = None) -> dg.Definitions:
    """Definitions for the settings file at `path` (default: --settings rules, see settings/loading.py)."""
    file = settings_path(path)
    settings = load_settings(file)  # fail at load, in the UI, with the settings' own message
    shards = settings.outbound.shards
    if settings.outbound.destinations:  # several Segment destinations: defs/destinations.py
        outbound_job = build_destinations_job(settings, build_executor(settings.executor))
        outbound_asset = build_destinations_asset(settings)
        outbound_sensors = build_destination_sensors(settings, outbound_job)
        segment_resources = destination_resources(settings)
        log_tables = log_table_specs(settings, LOG_TABLE_SPECS)
    else:
        outbound_job = build_outbound_job(shards, build_executor(settings.executor))
        outbound_asset = build_outbound_asset(shards)
        outbound_sensors = build_outbound_sensors(outbound_job)
        segment_resources = {}
        log_tables = LOG_TABLE_SPECS
    # With several destinations, replay, resync and reconciliation route too (same job names).
    replay_job, resync_job = build_resend_jobs(settings)
    reconcile_job = build_reconcile_job(settings)
    routed = {j.name: j for j in (replay_job, resync_job, reconcile_job)}
    sync_jobs = [outbound_job, *(routed.get(j.name, j) for j in OTHER_SYNC_JOBS)]
    # With several destinations, the outbound checks are per destination (destination_checks.py).
    checks = build_log_checks(settings)
    checks_job, checks_schedule = log_checks_job, log_checks_schedule
    if checks is not LOG_CHECKS:
        checks_job = build_log_checks_job(checks)
        checks_schedule = schedule_for(checks_job, *LOG_CHECKS_CADENCE)
    return dg.Definitions(
        assets=[
            *source_specs(settings.loyalty_store.url),
            outbound_asset,
            ingest_inbound_buffer,
            *log_tables,
        ],
        asset_checks=checks,
        jobs=[*sync_jobs, checks_job, inbound_replay_job, mappings_preview_job],
        sensors=[
            *outbound_sensors,
            inbound_buffer_sensor,
            build_run_failure_sensor(sync_jobs),
            *build_alert_sensors(sync_jobs, checks),
        ],
        schedules=[
            log_maintenance_schedule,
            reconcile_schedule(reconcile_job),
            checks_schedule,
        ],
        executor=build_executor(settings.executor),
        resources={
            "settings": SettingsResource(path=str(file)),
            "segment": SegmentResource(write_key=dg.EnvVar(settings.outbound.write_key_env)),
            **segment_resources,
            "antavo": AntavoResource(
                api_key=dg.EnvVar(settings.inbound.api_key_env),
                api_secret=dg.EnvVar(settings.inbound.api_secret_env),
            ),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded when the code location loads (not on import), so tests can pick their settings."""
    return build_definitions()
