"""The data flow as assets: loyalty store -> Segment calls, Segment webhook -> Antavo events, and
the log tables that record both directions.

The loyalty store and the webhook buffer are external sources. The outbound sync materializes
`segment_track_calls` or `segment_identify_calls` (one stream per run, so each plot is one
stream's), the ingest job `antavo_events`; each run also records a materialization of the log
tables it wrote.
"""

from collections.abc import Iterable, Iterator
from typing import TypeVar

import dagster as dg

from segment_sync.loyalty.records import Stream

SOURCE_GROUP = "loyalty_platform"
SEGMENT_GROUP = "segment"
ANTAVO_GROUP = "antavo"
LOG_GROUP = "segment_sync_logs"
LOG_KINDS = {"duckdb", "parquet"}

LOYALTY_EVENTS = dg.AssetSpec(
    "loyalty_events",
    group_name=SOURCE_GROUP,
    kinds={"sqlite", "postgres"},
    description="Loyalty events as the platform commits them (the loyalty store's events table).",
)
LOYALTY_PROFILE_CHANGES = dg.AssetSpec(
    "loyalty_profile_changes",
    group_name=SOURCE_GROUP,
    kinds={"sqlite", "postgres"},
    description="Customer profile changes as the platform commits them.",
)
SEGMENT_TRACK_CALLS = dg.AssetSpec(
    "segment_track_calls",
    deps=[LOYALTY_EVENTS],
    group_name=SEGMENT_GROUP,
    kinds={"segment"},
    skippable=True,
    description="Segment Track calls, one per allow-listed loyalty event, sent in batches per "
    "region. Each outbound run of the events stream materializes it with its counts.",
)
SEGMENT_IDENTIFY_CALLS = dg.AssetSpec(
    "segment_identify_calls",
    deps=[LOYALTY_PROFILE_CHANGES],
    group_name=SEGMENT_GROUP,
    kinds={"segment"},
    skippable=True,
    description="Segment Identify calls, one per profile change with allow-listed fields. Each "
    "outbound run of the profiles stream materializes it with its counts.",
)
SEGMENT_WEBHOOK_EVENTS = dg.AssetSpec(
    "segment_webhook_events",
    group_name=SEGMENT_GROUP,
    kinds={"segment"},
    description="What Segment sends to the webhook receiver, buffered durably before ingest.",
)
ANTAVO_EVENTS = dg.AssetSpec(
    "antavo_events",
    deps=[SEGMENT_WEBHOOK_EVENTS],
    group_name=ANTAVO_GROUP,
    kinds={"antavo"},
    skippable=True,  # a dry run materializes nothing
    description="Antavo events registered through the Events API from buffered Segment events "
    "that a mapping's trigger matched. Each inbound run materializes it with its counts.",
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
SOURCE_SPECS = [LOYALTY_EVENTS, LOYALTY_PROFILE_CHANGES, SEGMENT_WEBHOOK_EVENTS]

T = TypeVar("T")


def written(table: str, run_id: str) -> dg.AssetMaterialization:
    """A log table's materialization: the run `run_id` added rows to it."""
    return dg.AssetMaterialization(
        asset_key=table, metadata={"written_by_run": dg.MetadataValue.text(run_id)}
    )


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
