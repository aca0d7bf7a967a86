"""Arrow schemas of the log tables: the single source of truth for writers, views and compaction.

Columns marked `nullable=False` are required in every row; all other columns may be omitted.
Timestamps are UTC (`timestamp[us, tz=UTC]`); each table is partitioned on disk by the UTC date
of its `TIME_COLUMNS` column.
"""

from __future__ import annotations

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _required(name: str, type_: pa.DataType) -> pa.Field:
    """A column every row must carry, never null."""
    return pa.field(name, type_, nullable=False)


def _optional(name: str, type_: pa.DataType) -> pa.Field:
    """A column a row may omit or leave null."""
    return pa.field(name, type_, nullable=True)


OUTBOUND_LOG = pa.schema(
    [
        # The manual's "Outbound logs" columns first.
        _required("timestamp", UTC_TIMESTAMP),
        _optional("customer_id", pa.string()),  # the single customer in the request, else null
        _optional("customer_ids", pa.list_(pa.string())),  # every customer in the request
        _required("event_type", pa.string()),  # "track" | "identify"
        _optional("status_code", pa.int32()),  # null when no HTTP answer
        _optional("response_time_s", pa.float64()),
        _optional("error", pa.string()),
        _optional("identifier", pa.string()),  # request id
        _optional("run_id", pa.string()),
        _optional("stream", pa.string()),
        _optional("attempt", pa.int32()),
        _optional("message_count", pa.int32()),
        _optional("request_bytes", pa.int64()),
        _optional("region", pa.string()),
        _optional("endpoint", pa.string()),
        _optional("destination", pa.string()),  # outbound.destinations' name; null: the only one
        _optional("request_body", pa.string()),
        _optional("response_body", pa.string()),
    ]
)

OUTBOUND_MESSAGES = pa.schema(
    [
        _required("timestamp", UTC_TIMESTAMP),
        _required("message_id", pa.string()),
        _optional("identifier", pa.string()),  # the request that carried it; null if never sent
        _optional("run_id", pa.string()),
        _optional("stream", pa.string()),
        _optional("source_id", pa.int64()),
        _optional("customer_id", pa.string()),
        _optional("event_type", pa.string()),
        _optional("event_name", pa.string()),
        _required("outcome", pa.string()),  # "delivered" | "failed" | "skipped" | "pending"
        _optional("error", pa.string()),
        _optional("size_bytes", pa.int32()),
        _optional("destination", pa.string()),  # outbound.destinations' name; null: the only one
    ]
)

INBOUND_LOG = pa.schema(
    [
        # One row per event: each event of each Antavo request (a bulk request has several,
        # sharing the identifier), and each received event that was never sent (a mapping
        # failed: "error"; no mapping matched: "skipped"). The manual's columns first.
        _required("timestamp", UTC_TIMESTAMP),
        _optional("customer_id", pa.string()),
        _optional("action", pa.string()),
        _optional("status", pa.string()),  # "success" | "error" | "skipped" | "unknown"
        _optional("event_id", pa.string()),  # the id Antavo registered
        _optional("error", pa.string()),
        _optional("identifier", pa.string()),  # the Antavo request; null if never sent
        _optional("run_id", pa.string()),
        _optional("status_code", pa.int32()),  # this event's own status (null: never answered)
        _optional("request_status_code", pa.int32()),  # the whole request's HTTP status
        _optional("response_time_s", pa.float64()),
        _optional("event_count", pa.int32()),  # events in the whole request
        _optional("event_type", pa.string()),  # the Segment type of the event received
        _optional("message_id", pa.string()),  # its Segment messageId
        _optional("mapping_name", pa.string()),
        _optional("buffer_item_id", pa.int64()),
        _optional("request_body", pa.string()),  # this event's part of the request
        _optional("response_body", pa.string()),
    ]
)

INBOUND_ITEMS = pa.schema(
    [
        _required("timestamp", UTC_TIMESTAMP),
        _optional("buffer_item_id", pa.int64()),
        _optional("message_id", pa.string()),  # Segment messageId
        _optional("run_id", pa.string()),
        _optional("event_type", pa.string()),  # Segment type
        _optional("mapping_name", pa.string()),
        _required("outcome", pa.string()),  # "done" | "failed" | "retry" | "no_match" | "unknown"
        _optional("antavo_action", pa.string()),
        _optional("customer_id", pa.string()),
        _optional("antavo_event_id", pa.string()),
        _optional("error", pa.string()),
        _optional("identifier", pa.string()),
    ]
)

SYNC_RUNS = pa.schema(
    [
        _required("run_id", pa.string()),
        _required("job", pa.string()),
        _optional("trigger", pa.string()),  # "sensor" | "schedule" | "manual"
        _required("started_at", UTC_TIMESTAMP),
        _optional("ended_at", UTC_TIMESTAMP),
        _optional("status", pa.string()),  # "success" | "failure"
        _optional("messages_sent", pa.int64()),
        _optional("messages_failed", pa.int64()),
        _optional("messages_skipped", pa.int64()),
        _optional("requests", pa.int64()),
        _optional("bytes", pa.int64()),
        _optional("error", pa.string()),
        # Which settings the run used (settings/hash.py); null in rows written before it existed.
        _optional("settings_hash", pa.string()),
    ]
)

# One data file's outbound requests per event type, as daily_summary counts them (summaries.py):
# written beside a compacted day's file, so the view need not read and sort that day's rows.
REQUEST_SUMMARY = pa.schema(
    [
        _optional("type", pa.string()),
        _optional("requests", pa.int64()),
        _optional("errors", pa.int64()),
        _optional("response_times", pa.list_(pa.float64())),  # [p50, p95]
    ]
)

TABLES: dict[str, pa.Schema] = {
    "outbound_log": OUTBOUND_LOG,
    "outbound_messages": OUTBOUND_MESSAGES,
    "inbound_log": INBOUND_LOG,
    "inbound_items": INBOUND_ITEMS,
    "sync_runs": SYNC_RUNS,
}

# The column whose UTC date names a row's partition (`date=YYYY-MM-DD`) and drives retention.
TIME_COLUMNS: dict[str, str] = {
    "outbound_log": "timestamp",
    "outbound_messages": "timestamp",
    "inbound_log": "timestamp",
    "inbound_items": "timestamp",
    "sync_runs": "started_at",
}

# Closed vocabularies, checked on write so a typo ("Track") never reaches the log.
ALLOWED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "outbound_log": {"event_type": ("track", "identify")},
    "outbound_messages": {
        "event_type": ("track", "identify"),
        "outcome": ("delivered", "failed", "skipped", "pending"),
    },
    "inbound_log": {"status": ("success", "error", "skipped", "unknown")},
    "inbound_items": {"outcome": ("done", "failed", "retry", "no_match", "unknown")},
    "sync_runs": {
        "trigger": ("sensor", "schedule", "manual"),
        "status": ("success", "failure"),
    },
}


def schema_for(table: str) -> pa.Schema:
    """The schema of `table`; ValueError naming the known tables for an unknown one."""
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(
            f"unknown log table {table!r}; expected one of: {', '.join(TABLES)}"
        ) from None
