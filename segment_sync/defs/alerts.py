"""Alerts that reach a person: a failed sync run or a failed log check -> one webhook message.

Plain sensors over the event log with their own cursor rather than `@run_failure_sensor`: that
one moves its cursor past a run even when its function raises, so an alert the webhook refused
would be lost. Here the cursor stays in front of it and the next tick tries again (bounded, see
segment_sync/alerts/outbox.py). Building the text and posting it live in segment_sync/alerts/.

No `from __future__ import annotations` here: Dagster inspects the sensors' resource parameters.
"""

from collections.abc import Callable, Sequence

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from segment_sync.alerts.message import AlertKind, Failure, alert_text
from segment_sync.alerts.outbox import AlertCursor, AlertNotDelivered, Pending, deliver
from segment_sync.alerts.webhook import post_alert, url_secrets
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.run_results import failure_reason, known_secrets
from segment_sync.settings import Settings

RUN_ALERT_SENSOR = "run_failure_alert_sensor"
CHECK_ALERT_SENSOR = "check_failure_alert_sensor"
FETCH_LIMIT = 100  # events read per tick; the rest wait for the next one
MAX_ALERTS_PER_TICK = 10
MAX_FAILED_TICKS = 20  # ticks an alert may fail before it is given up (about 10 min)
TICK_BUDGET_S = 20.0  # no new post starts after this; Dagster stops a tick at 60 s
INTERVAL_S = 30
WILL_RETRY_TAG = "dagster/will_retry"


# ---------------------------------------------------------------------------------------------
# What failed since the cursor
# ---------------------------------------------------------------------------------------------


def _run_reason(instance: dg.DagsterInstance, run_id: str, failure: dg.DagsterEvent | None) -> str:
    steps = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return failure_reason([e.dagster_event for e in steps if e.dagster_event], failure)


def failed_runs(instance: dg.DagsterInstance, after: int, jobs: set[str]) -> list[Pending]:
    """Run failures after storage id `after`, oldest first; runs of other jobs need no alert."""
    records = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(
            event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after
        ),
        limit=FETCH_LIMIT,
        ascending=True,
    ).records
    pending = []
    for record in records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        if run is None or run.job_name not in jobs:
            pending.append(Pending(record.storage_id, None))
            continue
        reason = _run_reason(instance, run.run_id, record.event_log_entry.dagster_event)
        will_retry = run.tags.get(WILL_RETRY_TAG) == "true"
        failure = Failure(AlertKind.RUN_FAILURE, run.job_name, reason, run.run_id, will_retry)
        pending.append(Pending(record.storage_id, failure))
    return pending


def newest_run_failure(instance: dg.DagsterInstance) -> int:
    records = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
    return records[0].storage_id if records else 0


def _check_name(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()} / {key.name}"


def _check_pending(
    instance: dg.DagsterInstance, record: AssetCheckExecutionRecord
) -> Pending | None:
    """What one check execution asks for; None while it is still running."""
    name = _check_name(record.key)
    if record.status == AssetCheckExecutionRecordStatus.FAILED:
        evaluation = record.evaluation
        reason = (evaluation.description if evaluation else None) or "the check did not pass"
        return Pending(record.id, Failure(AlertKind.CHECK_FAILURE, name, reason, record.run_id))
    if record.status != AssetCheckExecutionRecordStatus.PLANNED:
        return Pending(record.id, None)  # passed or skipped
    # Planned stays planned when the check raised: the run's status tells what became of it.
    run = instance.get_run_by_id(record.run_id)
    if run is None:
        return Pending(record.id, None)
    if not run.is_finished:
        return None
    if run.status != dg.DagsterRunStatus.FAILURE:
        return Pending(record.id, None)
    reason = "it could not be evaluated: " + _run_reason(instance, run.run_id, None)
    return Pending(record.id, Failure(AlertKind.CHECK_FAILURE, name, reason, record.run_id))


def failed_checks(
    instance: dg.DagsterInstance, after: int, keys: Sequence[dg.AssetCheckKey]
) -> list[Pending]:
    """Executions of `keys` after record id `after`, oldest first, up to one still running (a
    later one waits for it, so the cursor never passes an execution whose outcome is unknown)."""
    storage = instance.event_log_storage
    records = sorted(
        (
            record
            for key in keys
            for record in storage.get_asset_check_execution_history(key, limit=FETCH_LIMIT)
            if record.id > after
        ),
        key=lambda record: record.id,
    )
    pending = []
    for record in records:
        item = _check_pending(instance, record)
        if item is None:
            break
        pending.append(item)
    return pending


def newest_check_execution(instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]) -> int:
    storage = instance.event_log_storage
    ids = [r.id for key in keys for r in storage.get_asset_check_execution_history(key, limit=1)]
    return max(ids, default=0)


# ---------------------------------------------------------------------------------------------
# The tick
# ---------------------------------------------------------------------------------------------


def _sender(settings: Settings) -> Callable[[Failure], None]:
    """Posts one failure's text; an unset variable is a failed delivery, not a crash."""
    alerts = settings.alerts
    url = settings.alert_webhook_url()
    redactor = known_secrets(settings)
    for secret in url_secrets(url or ""):
        redactor.add(secret)

    def send(failure: Failure) -> None:
        if url is None:
            name = alerts.webhook_url_env
            raise AlertNotDelivered(
                f"alerts.webhook_url_env: environment variable {name} is not set where the "
                f"Dagster daemon runs; export {name}=<incoming webhook URL> and restart it"
            )
        text = alert_text(failure, alerts.ui_base_url, redactor)
        post_alert(url, text, max_retries=alerts.max_retries, timeout_s=alerts.timeout_s)

    return send


def alert_tick(
    context: dg.SensorEvaluationContext,
    settings: Settings,
    kind: AlertKind,
    since: Callable[[int], list[Pending]],
    newest: Callable[[], int],
) -> dg.SkipReason:
    """Post what failed since the cursor. While alerts are off, and on the first tick, the
    cursor only moves to the newest event, so turning alerts on never posts old failures."""
    cursor = AlertCursor.from_json(context.cursor)
    if not settings.alerts.enabled(kind):
        context.update_cursor(AlertCursor(newest()).to_json())
        return dg.SkipReason(
            f"{kind} alerts are off: set alerts.webhook_url_env (and list {kind} in alerts.on)"
        )
    if cursor is None:
        context.update_cursor(AlertCursor(newest()).to_json())
        return dg.SkipReason(f"started: {kind} alerts for failures from now on")
    outcome = deliver(
        since(cursor.after),
        cursor,
        _sender(settings),
        max_alerts=MAX_ALERTS_PER_TICK,
        max_failed_ticks=MAX_FAILED_TICKS,
        budget_s=TICK_BUDGET_S,
    )
    context.update_cursor(outcome.cursor.to_json())
    if outcome.problem:
        context.log.warning(outcome.problem)
    for failure in outcome.sent:
        context.log.info(f"posted the {kind} alert for {failure.name} (run {failure.run_id})")
    return dg.SkipReason(outcome.summary())


def _alert_sensor(
    name: str,
    description: str,
    kind: AlertKind,
    failures_after: Callable[[dg.DagsterInstance, int], list[Pending]],
    newest: Callable[[dg.DagsterInstance], int],
) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=INTERVAL_S,
        description=description,
    )
    def alert_sensor(
        context: dg.SensorEvaluationContext, settings: SettingsResource
    ) -> dg.SkipReason:
        instance = context.instance
        return alert_tick(
            context,
            settings.load(),
            kind,
            lambda after: failures_after(instance, after),
            lambda: newest(instance),
        )

    return alert_sensor


def build_alert_sensors(
    jobs: Sequence[dg.JobDefinition], checks: Sequence[dg.AssetChecksDefinition]
) -> list[dg.SensorDefinition]:
    """The run-failure alert sensor (runs of `jobs`) and the check-failure one (`checks`)."""
    job_names = {job.name for job in jobs}
    check_keys = [key for definition in checks for key in definition.check_keys]
    return [
        _alert_sensor(
            RUN_ALERT_SENSOR,
            "A failed run of a sync or maintenance job -> one message to the alerts webhook "
            "(alerts.webhook_url_env): the job, why, and a link to the run.",
            AlertKind.RUN_FAILURE,
            lambda instance, after: failed_runs(instance, after, job_names),
            newest_run_failure,
        ),
        _alert_sensor(
            CHECK_ALERT_SENSOR,
            "A failed (or crashed) log check -> one message to the alerts webhook "
            "(alerts.webhook_url_env): the check, why, and a link to its run.",
            AlertKind.CHECK_FAILURE,
            lambda instance, after: failed_checks(instance, after, check_keys),
            lambda instance: newest_check_execution(instance, check_keys),
        ),
    ]
