"""The questions the Dagster code asks of the logs: request statistics, message outcomes, failed
inbound items, whether a run has its `sync_runs` row. Plain DuckDB over the Parquet logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from segment_sync.logs.final_outcomes import final_outcomes_sql
from segment_sync.logs.vanished import fetch_one
from segment_sync.logs.views import connect

# A request counts as failed when it got no answer, an HTTP error, or an error of its own
# (the same rule as the analysts' `daily_summary` view).
REQUEST_FAILED = {
    "outbound_log": "error IS NOT NULL OR status_code IS NULL OR status_code >= 400",
    "inbound_log": (
        "status = 'error' OR error IS NOT NULL OR status_code IS NULL OR status_code >= 400"
    ),
}
_ATTEMPT_IN_WINDOW = '"date" >= ? AND timestamp >= ? AND timestamp < ?'
# Which rows are requests: inbound_log also holds events that were never sent (no identifier).
REQUEST_ROWS = {"outbound_log": "true", "inbound_log": "identifier IS NOT NULL"}
# Log rows of a run are written after it started; a day of slack covers clocks and midnight.
PARTITION_SLACK = timedelta(days=1)


def error_rate(undelivered: int, attempted: int) -> float:
    """Share of the messages (or items) a run tried to deliver that were not delivered."""
    return undelivered / attempted if attempted else 0.0


@dataclass(frozen=True)
class RequestStats:
    """A set of request log rows: how many, how many failed, and the p95 response time."""

    requests: int
    failed: int
    p95_response_time_s: float | None

    @property
    def failed_share(self) -> float:
        """Failed requests / requests (0.0 when there were none); retried ones count too."""
        return error_rate(self.failed, self.requests)


def request_stats(
    logs_dir: Path | str,
    table: str,
    *,
    run_id: str | None = None,
    since: datetime,
    until: datetime | None = None,
) -> RequestStats:
    """Statistics of `table`'s request rows (outbound_log or inbound_log) from `since` on,
    optionally of one run only."""
    failed = REQUEST_FAILED[table]
    where = ['"date" >= ?', "timestamp >= ?", REQUEST_ROWS[table]]
    params: list = [(since.astimezone(UTC) - PARTITION_SLACK).date(), since]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if until is not None:
        where.append("timestamp < ?")
        params.append(until)
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE {failed}), "
        f"quantile_cont(response_time_s, 0.95) FROM {table} WHERE {' AND '.join(where)}"
    )
    with connect(logs_dir) as con:
        requests, failures, p95 = fetch_one(con, sql, params)
    return RequestStats(requests, failures, p95)


def message_outcomes(
    logs_dir: Path | str,
    since: datetime,
    until: datetime,
    *,
    destination: str | None = None,
    event_type: str | None = None,
) -> tuple[int, int]:
    """(attempted, undelivered) distinct outbound messages with an attempt in [since, until),
    by final outcome: undelivered when the latest attempt failed or is pending (skipped
    messages are not attempts). `destination` and `event_type` (track, identify) narrow it to
    one destination's rows of one call type; None: every row."""
    where, params = (
        _ATTEMPT_IN_WINDOW,
        [(since.astimezone(UTC) - PARTITION_SLACK).date(), since, until],
    )
    if destination is not None:
        where += " AND destination = ?"
        params.append(destination)
    if event_type is not None:
        where += " AND event_type = ?"
        params.append(event_type)
    with connect(logs_dir) as con:
        attempted, undelivered = fetch_one(
            con,
            f"""SELECT count(*), count(*) FILTER (WHERE outcome IN ('failed', 'pending'))
                FROM ({final_outcomes_sql(where)})""",
            params,
        )
    return attempted, undelivered


def failed_inbound_items(logs_dir: Path | str, since: datetime) -> tuple[int, str | None]:
    """(how many buffered items failed for good since `since`, the latest such error)."""
    with connect(logs_dir) as con:
        failed, latest_error = fetch_one(
            con,
            """SELECT count(DISTINCT coalesce(CAST(buffer_item_id AS VARCHAR), message_id)),
                      arg_max(error, timestamp)
               FROM inbound_items
               WHERE "date" >= ? AND timestamp >= ? AND outcome = 'failed'""",
            [since.date(), since],
        )
    return failed, latest_error


def has_run_row(logs_dir: Path | str, run_id: str, started_at: datetime) -> bool:
    """Whether `sync_runs` already holds a row for `run_id` (rows are partitioned by start)."""
    oldest = (started_at.astimezone(UTC) - PARTITION_SLACK).date()
    with connect(logs_dir) as con:
        (count,) = fetch_one(
            con, 'SELECT count(*) FROM sync_runs WHERE "date" >= ? AND run_id = ?', [oldest, run_id]
        )
    return count > 0


@dataclass(frozen=True)
class LoggedRunCounts:
    """What a run's own log rows say it did, in `sync_runs`' terms."""

    sent: int
    failed: int
    skipped: int
    requests: int
    bytes: int


# A run writes one direction's tables; the other contributes zeros. Outbound: messages by
# outcome, request attempts and their bytes. Inbound: events Antavo registered, items failed
# for good or matched by no mapping, Antavo requests.
_RUN_COUNTS_SQL = """
WITH o_messages AS (
    SELECT count(*) FILTER (WHERE outcome = 'delivered') AS sent,
           count(*) FILTER (WHERE outcome = 'failed') AS failed,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped
    FROM outbound_messages WHERE "date" >= $since AND run_id = $run
), o_requests AS (
    SELECT count(*) AS requests, coalesce(sum(request_bytes), 0) AS bytes
    FROM outbound_log WHERE "date" >= $since AND run_id = $run
), i_events AS (
    SELECT count(*) FILTER (WHERE status = 'success') AS sent,
           count(DISTINCT identifier) AS requests
    FROM inbound_log WHERE "date" >= $since AND run_id = $run AND identifier IS NOT NULL
), i_items AS (
    SELECT count(DISTINCT buffer_item_id) FILTER (WHERE outcome = 'failed') AS failed,
           count(*) FILTER (WHERE outcome = 'no_match') AS skipped
    FROM inbound_items WHERE "date" >= $since AND run_id = $run
)
SELECT o_messages.sent + i_events.sent, o_messages.failed + i_items.failed,
       o_messages.skipped + i_items.skipped, o_requests.requests + i_events.requests,
       o_requests.bytes
FROM o_messages, o_requests, i_events, i_items
"""


def logged_run_counts(logs_dir: Path | str, run_id: str, started_at: datetime) -> LoggedRunCounts:
    """The counts of a run that ended before it could count itself (a signal, a lost worker),
    from the log rows it wrote: what it delivered is what its log shows delivered."""
    since = (started_at.astimezone(UTC) - PARTITION_SLACK).date()
    with connect(logs_dir) as con:
        row = fetch_one(con, _RUN_COUNTS_SQL, {"since": since, "run": run_id})
    return LoggedRunCounts(*(int(n) for n in row))
