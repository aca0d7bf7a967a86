"""One chunk of outbound messages sent: its requests, its outcomes and their log rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.build import BuiltChunk
from segment_sync.outbound.message_log import message_columns
from segment_sync.outbound.narrowing import send_narrowing
from segment_sync.outbound.outcomes import record_requests, request_row, with_destination
from segment_sync.outbound.results import OutboundResult
from segment_sync.redaction import Redactor
from segment_sync.segment.client import BatchOutcome, SegmentClient, Verdict
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.messages import NotSent, iso_timestamp
from segment_sync.settings import Settings


async def send_chunk(
    client: SegmentClient,
    stream: Stream,
    built: BuiltChunk,
    result: OutboundResult,
    settings: Settings,
    logs: LogWriter,
    redactor: Redactor,
) -> None:
    """Send one built chunk: log its rows never sent, send its messages in requests (a refused
    request narrowed down to the refused messages), count and log every outcome."""
    counts = result.counts
    messages, not_sent = built.messages, built.not_sent
    counts.rows_read += built.rows_read
    counts.not_allow_listed += built.not_allow_listed
    logs.extend_columns(
        "outbound_messages",
        with_destination(message_columns(not_sent, result.run_id, stream), settings),
    )
    for n in not_sent:
        if n.outcome == "skipped":
            counts.skipped += 1
        else:
            counts.failed += 1
    abort = asyncio.Event()

    async def send(group: MessageColumns) -> tuple[BatchOutcome | None, int]:
        body = group.request_body(iso_timestamp(datetime.now(UTC)))
        if abort.is_set():
            return None, len(body)
        outcome = await client.send(body)
        if outcome.verdict is Verdict.FATAL:
            abort.set()
        rows = [
            request_row(a, group, body, stream, result.run_id, settings, redactor)
            for a in outcome.attempts
        ]
        logs.extend("outbound_log", rows)
        return outcome, len(body)

    # A request Segment refuses is split and resent until only the refused messages are
    # left; every request is its own outbound_log row, each message's row names the last.
    requests = await send_narrowing(messages, send)
    record_requests(requests, result, settings, logs)


def with_unrouted(built: BuiltChunk, unrouted: list[NotSent]) -> BuiltChunk:
    """A built chunk with the rows routed to no destination as failed, in the same counts."""
    if unrouted:
        built.not_sent.extend(unrouted)
        built.rows_read += len(unrouted)
    return built
