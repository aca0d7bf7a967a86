"""The data flow as assets: loyalty store -> Segment calls, Segment webhook -> Antavo events ->
back into the loyalty store, and the log tables that record both directions.

The loyalty store and the webhook buffer are external sources. The outbound sync materializes
`segment_track_calls` or `segment_identify_calls` (one stream per run, so each plot is one
stream's), the ingest job `antavo_events`, each only when the run delivered something (a run
that sent nothing records an observation, so the latest materialization is the latest
delivery); each run also records a materialization of the log
tables it wrote. Antavo registers what the inbound path sends as loyalty events and profile
changes, so the store depends on `antavo_events`: the loop is visible, and the outbound sync
skips those rows (origin `segment`, echo suppression), so nothing goes back to Segment.
"""

from collections.abc import Iterable, Iterator
from typing import Literal, TypeVar

import dagster as dg

from segment_sync.loyalty.records import Stream

SOURCE_GROUP = "loyalty_platform"
OUTBOUND_GROUP = "outbound"
INBOUND_GROUP = "inbound"
LOG_GROUP = "segment_sync_logs"
LOG_KINDS = {"duckdb", "parquet"}
StoreKind = Literal["sqlite", "postgres"]
DEFAULT_STORE_KIND: StoreKind = "sqlite"  # loyalty_store.url's default
ECHO_NOTE = (
    "Rows Antavo registered from Segment (origin `segment`, from antavo_events) are skipped by "
    "the outbound sync (echo suppression): nothing goes back to Segment."
)

SEGMENT_WEBHOOK_EVENTS = dg.AssetSpec(
    "segment_webhook_events",
    group_name=INBOUND_GROUP,
    kinds={"segment"},
    description="What Segment sends to the webhook receiver, buffered durably before ingest.",
)
ANTAVO_EVENTS = dg.AssetSpec(
    "antavo_events",
    deps=[SEGMENT_WEBHOOK_EVENTS],
    group_name=INBOUND_GROUP,
    kinds={"antavo"},
    skippable=True,  # a dry run materializes nothing
    description="Antavo events registered through the Events API from buffered Segment events "
    "that a mapping's trigger matched. Each inbound run that registers events materializes it "
    "with its counts (a run that registered none records an observation). Antavo "
    "records them in the loyalty store (loyalty_events, loyalty_profile_changes), where the "
    "outbound sync skips them as echoes, so they are never sent back to Segment.",
)
LOYALTY_EVENTS_KEY = dg.AssetKey("loyalty_events")
LOYALTY_PROFILE_CHANGES_KEY = dg.AssetKey("loyalty_profile_changes")
SEGMENT_TRACK_CALLS = dg.AssetSpec(
    "segment_track_calls",
    deps=[LOYALTY_EVENTS_KEY],
    group_name=OUTBOUND_GROUP,
    kinds={"segment"},
    skippable=True,
    description="Segment Track calls, one per allow-listed loyalty event, sent in batches per "
    "region. Each outbound run of the events stream that delivers materializes it with its "
    "counts (a run that sent nothing records an observation). Events "
    "that came from Segment through antavo_events are skipped (echo suppression).",
)
SEGMENT_IDENTIFY_CALLS = dg.AssetSpec(
    "segment_identify_calls",
    deps=[LOYALTY_PROFILE_CHANGES_KEY],
    group_name=OUTBOUND_GROUP,
    kinds={"segment"},
    skippable=True,
    description="Segment Identify calls, one per profile change with allow-listed fields. Each "
    "outbound run of the profiles stream that delivers materializes it with its counts (a run "
    "that sent nothing records an observation). Profile changes that "
    "came from Segment through antavo_events are skipped (echo suppression).",
)


def store_kind(store_url: object) -> StoreKind:
    """The kind badge of the loyalty store at `store_url` (a validated loyalty_store.url)."""
    scheme = str(store_url).split(":", 1)[0].lower()
    return "postgres" if scheme.startswith("postgres") else DEFAULT_STORE_KIND


def store_specs(kind: StoreKind = DEFAULT_STORE_KIND) -> list[dg.AssetSpec]:
    """The loyalty store's two tables, badged with the store actually configured."""
    return [
        dg.AssetSpec(
            LOYALTY_EVENTS_KEY,
            deps=[ANTAVO_EVENTS],
            group_name=SOURCE_GROUP,
            kinds={kind},
            description="Loyalty events as the platform commits them (the loyalty store's "
            f"events table), and the events Antavo registered from Segment. {ECHO_NOTE}",
        ),
        dg.AssetSpec(
            LOYALTY_PROFILE_CHANGES_KEY,
            deps=[ANTAVO_EVENTS],
            group_name=SOURCE_GROUP,
            kinds={kind},
            description="Customer profile changes as the platform commits them, and the "
            f"profile updates Antavo registered from Segment. {ECHO_NOTE}",
        ),
    ]


# The global lineage with every group open (Dagster's UI collapses groups when there are
# several; its `expanded` parameter names groups as `global@global:<group>`).
EXPANDED_LINEAGE_PATH = "/asset-groups?expanded=" + ",".join(
    f"global@global:{group}" for group in (SOURCE_GROUP, INBOUND_GROUP, OUTBOUND_GROUP, LOG_GROUP)
)

STREAM_ASSETS = {Stream.EVENTS: SEGMENT_TRACK_CALLS, Stream.PROFILES: SEGMENT_IDENTIFY_CALLS}
OUTBOUND_CALLS = [SEGMENT_TRACK_CALLS, SEGMENT_IDENTIFY_CALLS]


def _log_table(name: str, deps: Iterable[dg.AssetSpec], description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name, deps=list(deps), group_name=LOG_GROUP, kinds=LOG_KINDS, description=description
    )


LOG_TABLE_SPECS = [
    _log_table(
        "outbound_log",
        OUTBOUND_CALLS,
        "One row per request to Segment (Track/Identify batches). Each outbound run records a "
        "materialization: its requests, failed requests, error rate and p95 response time.",
    ),
    _log_table(
        "outbound_messages",
        OUTBOUND_CALLS,
        "One row per outbound message: delivered, failed, skipped or pending, and the request "
        "that carried it.",
    ),
    _log_table(
        "inbound_log",
        [ANTAVO_EVENTS],
        "One row per event of each request to the Antavo Events API, and per event that failed "
        "its mapping or matched none. Each inbound run records a materialization: events "
        "registered, items failed, error rate, p95 response time.",
    ),
    _log_table(
        "inbound_items",
        [SEGMENT_WEBHOOK_EVENTS],
        "One row per buffered Segment event and mapping: done, failed, retry or no_match.",
    ),
    _log_table(
        "sync_runs", [], "One row per run of a sync or maintenance job, succeeded or failed."
    ),
]


def source_specs(store_url: object) -> list[dg.AssetSpec]:
    """The external sources: the loyalty store (badged with its kind) and the webhook buffer."""
    return [*store_specs(store_kind(store_url)), SEGMENT_WEBHOOK_EVENTS]


T = TypeVar("T")


def written(table: str, run_id: str) -> dg.AssetMaterialization:
    """A log table's materialization: the run `run_id` added rows to it."""
    return dg.AssetMaterialization(
        asset_key=table, metadata={"written_by_run": dg.MetadataValue.text(run_id)}
    )


def delivery(
    key: dg.AssetKey,
    delivered: int,
    metadata: dict[str, dg.MetadataValue],
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
) -> dg.MaterializeResult | dg.AssetObservation:
    """A run's record on the asset it delivers to: a materialization when it delivered
    something, else an observation with the same numbers, so the asset's latest
    materialization is always its latest delivery."""
    if delivered > 0:
        return dg.MaterializeResult(asset_key=key, metadata=metadata)
    partition = context.partition_key if context.has_partition_key else None
    return dg.AssetObservation(asset_key=key, metadata=metadata, partition=partition)


def with_sync_runs_written(
    run_id: str, events: Iterator[T]
) -> Iterator[T | dg.AssetMaterialization]:
    """`events`, then `sync_runs`' materialization: the op's run row is written on its way out,
    whether it succeeded or failed."""
    try:
        yield from events
    except Exception:
        yield written("sync_runs", run_id)
        raise
    yield written("sync_runs", run_id)
