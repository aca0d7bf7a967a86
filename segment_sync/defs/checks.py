"""Asset checks that judge the log tables (see assets.py) and the loyalty source against settings.

The checks read the real logs (DuckDB over the Parquet files) and the loyalty store, and fail
with an ERROR severity when a threshold of `maintenance.checks` is crossed. `log_checks_job` runs
them; the `log_checks_schedule` runs that job every 15 minutes. The assets they judge are never
materialized by the syncs (observed instead), so each result stays attached
(docs/operations/checks.md).

No `from __future__ import annotations` here: Dagster inspects the checks' resource parameters.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import LOYALTY_EVENTS_KEY
from segment_sync.defs.resources import SettingsResource
from segment_sync.defs.schedules import schedule_for
from segment_sync.logs.queries import error_rate, failed_inbound_items, message_outcomes
from segment_sync.loyalty.liveness import LivenessRule, hourly_rows, judge
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.build import EVENT_TYPES
from segment_sync.outbound.reconcile import events_backlog
from segment_sync.settings import Settings

INBOUND_FAILURE_WINDOW = timedelta(hours=1)
# Waiting for an outbound run that holds the events stream; the checks job is queued behind
# such runs anyway (it carries the stream's concurrency tag).
STREAM_LOCK_WAIT_S = 120.0


ERROR_RATE_DESCRIPTION = (
    "Undelivered / attempted outbound messages over the last "
    "maintenance.checks.outbound_error_rate_window_hours stay at or under "
    "maintenance.checks.outbound_error_rate_max. Each message counts once, by its final "
    "outcome (its latest attempt in outbound_messages): one that failed and was delivered "
    "later is delivered."
)


@dg.asset_check(asset="outbound_log", description=ERROR_RATE_DESCRIPTION)
def outbound_error_rate(settings: SettingsResource) -> dg.AssetCheckResult:
    return error_rate_result(settings.load())


def error_rate_result(
    loaded: Settings, destination: str | None = None, stream: Stream | None = None
) -> dg.AssetCheckResult:
    """The error-rate check of every message, or of one destination's messages of one stream."""
    limits = loaded.maintenance.checks
    now = datetime.now(UTC)
    since = now - timedelta(hours=limits.outbound_error_rate_window_hours)
    event_type = EVENT_TYPES[stream] if stream else None
    attempted, undelivered = message_outcomes(
        loaded.logs.dir, since, now, destination=destination, event_type=event_type
    )
    rate = error_rate(undelivered, attempted)
    metadata = {
        "messages": dg.MetadataValue.int(attempted),
        "undelivered": dg.MetadataValue.int(undelivered),
        "error_rate": dg.MetadataValue.float(rate),
        "max_error_rate": dg.MetadataValue.float(limits.outbound_error_rate_max),
        "window_hours": dg.MetadataValue.float(limits.outbound_error_rate_window_hours),
    }
    passed = rate <= limits.outbound_error_rate_max
    verdict = "within" if passed else "over"
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata | _destination_metadata(destination),
        description=_named(destination, event_type)
        + f"{undelivered} of {attempted} message(s) not delivered ({rate:.2%}), "
        f"{verdict} the limit of {limits.outbound_error_rate_max:.2%}.",
    )


def _destination_metadata(destination: str | None) -> dict[str, dg.MetadataValue]:
    return {"destination": dg.MetadataValue.text(destination)} if destination else {}


def _named(destination: str | None, what: str | None = None) -> str:
    """`destination eu (track): ` ahead of a routed check's description, so its alert names it."""
    if destination is None:
        return ""
    return f"destination {destination}" + (f" ({what})" if what else "") + ": "


@dg.asset_check(
    asset="inbound_log",
    description="No more than maintenance.checks.inbound_failed_items_max buffered Segment "
    "events (inbound_items) failed for good in the last hour.",
)
def inbound_failed_items(settings: SettingsResource) -> dg.AssetCheckResult:
    loaded = settings.load()
    limit = loaded.maintenance.checks.inbound_failed_items_max
    since = datetime.now(UTC) - INBOUND_FAILURE_WINDOW
    failed, latest_error = failed_inbound_items(loaded.logs.dir, since)
    metadata = {
        "failed_items_last_hour": dg.MetadataValue.int(failed),
        "max_failed_items": dg.MetadataValue.int(limit),
    }
    if latest_error:
        metadata["latest_error"] = dg.MetadataValue.text(latest_error)
    return dg.AssetCheckResult(
        passed=failed <= limit,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=f"{failed} inbound item(s) failed in the last hour (limit {limit}).",
    )


UNDELIVERED_DESCRIPTION = (
    "The oldest loyalty event that matches the settings but is not delivered is "
    "younger than maintenance.checks.undelivered_event_age_max_minutes: both events the sync "
    "passed without a delivered row (the reconciliation window) and events still waiting above "
    "the watermark (e.g. behind failing runs)."
)


@dg.asset_check(asset="outbound_log", description=UNDELIVERED_DESCRIPTION)
def oldest_undelivered_event(settings: SettingsResource) -> dg.AssetCheckResult:
    return undelivered_result(settings.load())


def undelivered_result(loaded: Settings, destination: str | None = None) -> dg.AssetCheckResult:
    """The oldest-undelivered check of the single destination or of one routed destination:
    the events routed to it, against its own progress."""
    limit = timedelta(minutes=loaded.maintenance.checks.undelivered_event_age_max_minutes)
    one = loaded.for_destination(destination)  # its own progress (watermark key) and routing
    store = factory.loyalty_store(one)
    state = factory.outbound_state(one, one.write_key())
    try:
        backlog = events_backlog(one, store, state, wait_s=STREAM_LOCK_WAIT_S)
    finally:
        store.close()
        state.close()
    now, found, waiting = backlog.now, backlog.behind, backlog.waiting
    oldest = found.oldest
    age = now - oldest.occurred_at if oldest else timedelta(0)
    waiting_age = now - waiting.occurred_at if waiting else timedelta(0)
    metadata = {
        "undelivered_events": dg.MetadataValue.int(len(found.events)),
        "oldest_age_minutes": dg.MetadataValue.float(round(age.total_seconds() / 60, 3)),
        "max_age_minutes": dg.MetadataValue.float(limit.total_seconds() / 60),
        "watermark": dg.MetadataValue.int(found.watermark),
        "events_in_window": dg.MetadataValue.int(found.scanned),
        "oldest_pending_age_minutes": dg.MetadataValue.float(
            round(waiting_age.total_seconds() / 60, 3)
        ),
    }
    if oldest:
        metadata["oldest_event_id"] = dg.MetadataValue.int(oldest.id)
        description = (
            f"{len(found.events)} event(s) behind the watermark undelivered; the oldest "
            f"(id {oldest.id}, {oldest.action}) occurred {age.total_seconds() / 60:.0f} min ago."
        )
    else:
        description = "every matching event behind the watermark was delivered."
    if waiting:
        metadata["oldest_pending_event_id"] = dg.MetadataValue.int(waiting.id)
        description += (
            f" The oldest event waiting above the watermark (id {waiting.id}) occurred "
            f"{waiting_age.total_seconds() / 60:.0f} min ago."
        )
    return dg.AssetCheckResult(
        passed=max(age, waiting_age) < limit,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata | _destination_metadata(destination),
        description=_named(destination) + description,
    )


@dg.asset_check(
    asset=LOYALTY_EVENTS_KEY,
    description="The loyalty source is alive: the last hour's new loyalty events (echoes of "
    "Segment events left out) are at least maintenance.checks.source_alive_min_share of the "
    "median of the same hour over the last source_alive_days days; a median under "
    "source_alive_min_baseline (a new or quiet store) is not judged.",
)
def loyalty_source_alive(settings: SettingsResource) -> dg.AssetCheckResult:
    loaded = settings.load()
    limits = loaded.maintenance.checks
    rule = LivenessRule(
        limits.source_alive_min_share, limits.source_alive_min_baseline, limits.source_alive_days
    )
    store = factory.loyalty_store(loaded)
    try:
        rows = hourly_rows(store, datetime.now(UTC), rule.days)
    finally:
        store.close()
    verdict = judge(rows, rule)
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "new_events_last_hour": dg.MetadataValue.int(rows.last_hour),
            "same_hour_median": dg.MetadataValue.float(rows.baseline),
            "threshold": dg.MetadataValue.float(verdict.threshold),
            "judged": dg.MetadataValue.bool(verdict.judged),
            "days": dg.MetadataValue.int(rule.days),
        },
        description=verdict.text,
    )


LOG_CHECKS = [
    outbound_error_rate,
    inbound_failed_items,
    oldest_undelivered_event,
    loyalty_source_alive,
]


def build_log_checks_job(checks: list[dg.AssetChecksDefinition]):
    """The job that evaluates `checks` (the same name and tags for any destinations)."""
    return dg.define_asset_job(
        "log_checks_job",
        selection=dg.AssetSelection.checks(*checks),
        description="Evaluate the asset checks of the log tables and the loyalty source against "
        "their thresholds.",
        # No stream tag: the outbound runs of a stream hold both of its run slots (the sender
        # and its successor), and a checks run in one would delay the hand-over by a run launch.
    )


log_checks_job = build_log_checks_job(LOG_CHECKS)

LOG_CHECKS_CADENCE = ("*/15 * * * *", "Every 15 minutes: the log tables' asset checks.")
log_checks_schedule = schedule_for(log_checks_job, *LOG_CHECKS_CADENCE)
