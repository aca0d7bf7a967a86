"""Replay and resync: send source rows again, rebuilt as the same messages (same messageIds).

- replay: the messages whose outcome is failed or pending and that Segment never accepted
  (no `delivered` row), optionally narrowed by the manual's outbound log filter and a time range
  of their latest log row. The filter fields are those of the outbound request log: Identifier,
  Customer ID, Event type, Error and Status code (of the request that carried the message; none
  for a message never sent), e.g. `Error contains external_customer_id` or `Status code is 400`.
- resync: every row of a stream that occurred in a time range and that the sync has passed
  (id at or below the watermark; rows above it are the regular run's), e.g. after an action was
  added to `outbound.event_sync`.

Both hold the stream's lock from the search to the last log row (`OutboundSync.send_rows`'
contract) and never move the watermark. Segment deduplicates by messageId, so a row sent again
is stored once. No Dagster here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from segment_sync.directions import allow_list_off
from segment_sync.logs.filters import FilterError, compile_filter
from segment_sync.logs.time_window import parse_time, time_range
from segment_sync.logs.vanished import fetch_all
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.results import OutboundCounts, OutboundFailed, OutboundResult
from segment_sync.outbound.sync import OutboundSync

PAGE = 5000  # source rows per send: memory stays bounded however large the range

_UNDELIVERED_SQL = """
WITH latest AS (
    SELECT message_id,
           arg_max(source_id, "timestamp") AS source_id,
           arg_max(outcome, "timestamp") AS outcome,
           arg_max(error, "timestamp") AS error,
           arg_max(identifier, "timestamp") AS identifier,
           arg_max(customer_id, "timestamp") AS customer_id,
           arg_max(event_type, "timestamp") AS event_type,
           max("timestamp") AS "timestamp",
           bool_or(outcome = 'delivered') AS delivered
    FROM outbound_messages
    WHERE stream = ?
    GROUP BY message_id
),
candidates AS (
    SELECT l.message_id, l.source_id, l.error, l.identifier, l.customer_id,
           [l.customer_id] AS customer_ids, l.event_type, l."timestamp",
           CAST(l."timestamp" AT TIME ZONE 'UTC' AS DATE) AS "date", r.status_code
    FROM latest AS l LEFT JOIN outbound_log AS r ON r.identifier = l.identifier
    WHERE NOT l.delivered AND l.outcome IN ('failed', 'pending') AND l.source_id IS NOT NULL
)
SELECT DISTINCT source_id FROM candidates WHERE ({filter}) AND ({window}) ORDER BY source_id
"""


@dataclass
class Resend:
    """What a replay or resync found and sent, per stream."""

    stream: Stream
    found: int = 0
    results: list[OutboundResult] = field(default_factory=list)
    note: str | None = None  # why nothing was searched (e.g. the stream is off)


def streams_of(name: str) -> list[Stream]:
    """events | profiles | all -> the streams."""
    return [Stream.EVENTS, Stream.PROFILES] if name == "all" else [Stream(name)]


def replayable_ids(
    logs_dir: Path | str,
    stream: Stream,
    filter_text: str = "",
    since: str | None = None,
    until: str | None = None,
) -> list[int]:
    """Source ids of `stream`'s failed or pending, never delivered messages that match;
    FilterError for a filter or time the user cannot have meant."""
    where, params = compile_filter(filter_text, "outbound")
    window, window_params = time_range(since, until)
    sql = _UNDELIVERED_SQL.format(filter=where, window=window)
    with connect(logs_dir) as con:
        rows = fetch_all(con, sql, [stream.value, *params, *window_params])
    return [source_id for (source_id,) in rows]


def _send(sync: OutboundSync, stream: Stream, rows: list, run_id: str, resend: Resend) -> None:
    if not rows:
        return
    try:
        resend.results.append(sync.send_rows(stream, rows, run_id))
    except OutboundFailed as failed:
        resend.results.append(failed.result)
        raise


def replay(
    sync: OutboundSync,
    logs_dir: Path | str,
    streams: list[Stream],
    run_id: str,
    filter_text: str = "",
    since: str | None = None,
    until: str | None = None,
) -> list[Resend]:
    """Resend the failed or pending messages that match, stream by stream."""
    compile_filter(filter_text, "outbound")  # a bad filter fails before any lock is taken
    time_range(since, until)
    done: list[Resend] = []
    for stream in streams:
        resend = Resend(stream)
        done.append(resend)
        with sync.state.lock(stream):
            ids = replayable_ids(logs_dir, stream, filter_text, since, until)
            resend.found = len(ids)
            for page in _pages(ids):
                rows = sync.store.rows_by_ids(stream, page)
                try:
                    _send(sync, stream, rows, run_id, resend)
                except OutboundFailed:
                    return done
    return done


def resync(
    sync: OutboundSync,
    streams: list[Stream],
    run_id: str,
    since: str,
    until: str | None = None,
) -> list[Resend]:
    """Resend every row of `streams` that occurred in [since, until) up to the watermark."""
    start = parse_time(since)
    end = parse_time(until, end_of_day=True) if until else datetime.now(UTC)
    if start >= end:
        raise FilterError(
            f"--since ({start.isoformat()}) must be earlier than --until ({end.isoformat()})"
        )
    done: list[Resend] = []
    for stream in streams:
        resend = Resend(stream)
        done.append(resend)
        with sync.state.lock(stream):
            upto = sync.state.watermark(stream)
            after = 0
            while True:
                rows = sync.store.rows_between(
                    stream, start, end, after_id=after, upto_id=upto, limit=PAGE
                )
                if not rows:
                    break
                resend.found += len(rows)
                after = rows[-1].id
                try:
                    _send(sync, stream, rows, run_id, resend)
                except OutboundFailed:
                    return done
    return done


def _pages(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), PAGE):
        yield ids[start : start + PAGE]


def resend_lines(action: str, done: list[Resend]) -> list[str]:
    """One line per stream of a replay or resync: what it found and what became of it."""
    lines = []
    for d in done:
        if d.note:
            lines.append(f"{action} {d.stream.value}: not run; {d.note}")
            continue
        c = OutboundCounts()
        for r in d.results:
            c.add(r.counts)
        label = d.results[0].label if d.results else d.stream.value  # events@eu
        lines.append(
            f"{action} {label}: found {d.found} row(s); sent {c.sent}, failed {c.failed}, "
            f"skipped {c.skipped}, pending {c.pending}, not allow-listed {c.not_allow_listed}, "
            f"requests {c.requests}"
        )
    return lines


Resender = Callable[[OutboundSync, list[Stream]], list[Resend]]


def resend_enabled(sync: OutboundSync, streams: list[Stream], resend: Resender) -> list[Resend]:
    """Run `resend` on the streams that are on; a stream that is off gets a note saying why."""
    done = [Resend(s, note=allow_list_off(sync.settings, s)) for s in streams]
    enabled = [d.stream for d in done if not d.note]
    found = {d.stream: d for d in resend(sync, enabled)} if enabled else {}
    return [found.get(d.stream, d) for d in done]
