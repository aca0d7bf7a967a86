"""Inbound: a job that ingests the webhook buffer into Antavo, and the buffer sensor that starts it.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

from collections.abc import Iterator

import dagster as dg

from segment_sync import factory
from segment_sync.defs.assets import ANTAVO_EVENTS, delivery, with_sync_runs_written, written
from segment_sync.defs.resources import AntavoResource, SettingsResource
from segment_sync.defs.run_results import run_log_metadata
from segment_sync.defs.tags import (
    DRY_RUN_TAG,
    STREAM_TAG,
    TRIGGER_TAG,
    dry_run_observation,
    op_run_record,
    tag_counts,
)
from segment_sync.dry_runs import inbound_dry_run
from segment_sync.inbound.ingest_result import IngestError, IngestResult
from segment_sync.inbound.replay import replay_inbound
from segment_sync.logs.filters import FilterError

SENSOR_INTERVAL_S = 10


class InboundConfig(dg.Config):
    """Process buffered items up to this id (default: everything pending when the run starts).

    `dry_run`: log what would be sent for everything pending; nothing sent, no item claimed.
    """

    upto: int | None = None
    dry_run: bool = False


def ingest_metadata(result: IngestResult) -> dict[str, dg.MetadataValue]:
    c = result.counts
    metadata = {
        "items": dg.MetadataValue.int(c.items),
        "done": dg.MetadataValue.int(c.done),
        "failed": dg.MetadataValue.int(c.failed),
        "unknown": dg.MetadataValue.int(c.unknown),
        "retried": dg.MetadataValue.int(c.retried),
        "no_match": dg.MetadataValue.int(c.no_match),
        "antavo_events": dg.MetadataValue.int(c.antavo_events),
        "upto": dg.MetadataValue.int(result.upto),
    }
    if c.unlogged:  # registered by Antavo, but the log could not be written: repeated later
        metadata["antavo_events_unlogged"] = dg.MetadataValue.int(c.unlogged)
    if result.errors:
        top = "\n".join(f"{n} x {e}" for e, n in result.errors.most_common(10))
        metadata["top_errors"] = dg.MetadataValue.md(f"```\n{top}\n```")
    return metadata


@dg.multi_asset(
    name="ingest_inbound_buffer",
    specs=[ANTAVO_EVENTS],
    description="Apply triggers and mappings to buffered Segment events; register them in Antavo.",
)
def ingest_inbound_buffer(
    context: dg.AssetExecutionContext,
    config: InboundConfig,
    settings: SettingsResource,
    antavo: AntavoResource,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    if config.dry_run:
        yield _dry_run(context, settings)
        return
    yield from with_sync_runs_written(
        context.run_id, _ingest(context.op_execution_context, config, settings, antavo)
    )


def _dry_run(context: dg.AssetExecutionContext, settings: SettingsResource) -> dg.AssetObservation:
    """What an ingest would send, logged and observed on antavo_events; nothing sent."""
    plan = inbound_dry_run(settings.load())
    if isinstance(plan, str):
        raise dg.Failure(description=f"dry run: {plan}", allow_retries=False)
    context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
    counts = {"would_send_events": plan.events, "would_send_requests": plan.requests,
              "would_send_bytes": plan.bytes, "would_fail": plan.failed}  # fmt: skip
    return dry_run_observation(ANTAVO_EVENTS.key, plan.lines(), context.log, **counts)


def _ingest(
    context: dg.OpExecutionContext,
    config: InboundConfig,
    settings: SettingsResource,
    antavo: AntavoResource,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    # A generator, so what a failed run registered is materialized too before it fails.
    loaded = settings.load()
    logs = factory.log_writer(loaded)
    secrets = [antavo.api_key, antavo.api_secret, *loaded.secrets()]
    with op_run_record(context, logs, secrets, settings=loaded) as (record, redactor):
        ingest = antavo.inbound_ingest(loaded, logs)
        stopped: IngestError | None = None
        try:
            result = ingest.run(context.run_id, config.upto)
        except IngestError as exc:  # credentials or the log: an expected failure, no traceback
            stopped, result = exc, exc.result
        c = result.counts
        record.count(c.antavo_events, c.failed, c.no_match, c.requests)
        tag_counts(context, record)
        metadata = ingest_metadata(result) | run_log_metadata(
            loaded.logs.dir,
            "inbound_log",
            context.run_id,
            record.started_at,
            delivered=c.done,
            undelivered=c.failed + c.retried + c.unknown,
        )
        yield delivery(ANTAVO_EVENTS.key, c.antavo_events, metadata, context)
        yield dg.AssetObservation(asset_key="inbound_log", metadata=metadata)
        yield written("inbound_items", context.run_id)
        if stopped is not None or not result.ok:
            failure = str(stopped) if stopped is not None else result.failure_message()
            record.error = redactor.text(failure) or failure
            raise dg.Failure(description=record.error, metadata=metadata, allow_retries=False)


# One inbound run at a time (dagster.yaml's limit per stream tag): the Antavo rate limit is
# per client, so two runs at once would send at twice the configured rate.
inbound_ingest_job = dg.define_asset_job(
    "inbound_ingest_job",
    selection=dg.AssetSelection.keys(ANTAVO_EVENTS.key),
    description="Inbound ingest: buffered Segment events -> Antavo Events API.",
    tags={STREAM_TAG: "inbound"},
)


class InboundReplayConfig(dg.Config):
    """Which failed items to re-queue: all, or those matching (times: ISO, now, 30m/1h/7d ago).

    `include_unknown`: also items of unknown outcome, which Antavo may have registered already
    (Antavo has no idempotency key: re-sending them can register them twice).
    """

    filter: str | None = None
    since: str | None = None
    until: str | None = None
    include_unknown: bool = False


@dg.op(description="Put failed buffered webhook events back to pending, attempts reset.")
def requeue_failed_inbound_items(
    context: dg.OpExecutionContext, config: InboundReplayConfig, settings: SettingsResource
) -> dg.Output[int]:
    buffer = factory.inbound_buffer(settings.load())
    try:
        count = replay_inbound(
            buffer,
            config.filter,
            config.since,
            config.until,
            echo=context.log.info,
            include_unknown=config.include_unknown,
        )
    except FilterError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    finally:
        buffer.close()
    return dg.Output(count, metadata={"requeued": dg.MetadataValue.int(count)})


@dg.job(
    description="Replay inbound: re-queue failed buffered items (after a credential or mapping "
    "fix); the buffer sensor then delivers them."
)
def inbound_replay_job() -> None:
    requeue_failed_inbound_items()


def _run_with_key(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    """The inbound run a sensor already requested with `run_key`, if any."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=inbound_ingest_job.name, tags={"dagster/run_key": run_key}),
        limit=1,
    )
    return records[0].dagster_run if records else None


@dg.sensor(
    name="inbound_buffer_sensor",
    job=inbound_ingest_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New webhook events in the buffer (or items due a retry) -> an inbound run.",
)
def inbound_buffer_sensor(context: dg.SensorEvaluationContext, settings: SettingsResource):
    from segment_sync.directions import inbound_off

    loaded = settings.load()
    off = inbound_off(loaded)
    if off:  # no Antavo credentials: a run could only fail; items stay buffered
        return dg.SkipReason(off)
    buffer = factory.inbound_buffer(loaded)
    try:
        newest, (pending, attempts) = buffer.max_id(), buffer.pending_summary()
    finally:
        buffer.close()
    if pending == 0:
        return dg.SkipReason(f"nothing pending in the buffer (newest id {newest})")
    context.update_cursor(str(newest))
    # Attempts are in the key: after a run retried items, the same backlog earns a new run.
    run_key = f"inbound-upto-{newest}-attempts-{attempts}"
    taken = _run_with_key(context.instance, run_key)
    if taken is not None:  # Dagster would drop the request silently; say why instead
        return dg.SkipReason(
            f"{pending} item(s) pending up to id {newest}; run {taken.run_id} "
            f"({taken.status.value.lower()}) already took them; a new event or an item due a "
            "retry starts the next run"
        )
    return dg.RunRequest(
        run_key=run_key,
        run_config=dg.RunConfig(ops={"ingest_inbound_buffer": InboundConfig(upto=newest)}),
        tags={TRIGGER_TAG: "sensor", STREAM_TAG: "inbound"},
    )
