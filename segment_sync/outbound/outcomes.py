"""What a finished /v1/batch request means for a run: its counts, latency and log rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.message_log import message_columns
from segment_sync.outbound.narrowing import Sent
from segment_sync.outbound.results import OutboundResult, configuration_error
from segment_sync.redaction import Redactor, redact_url
from segment_sync.segment.client import Attempt, BatchOutcome, Verdict
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.settings import Settings


def record_requests(
    requests: Sequence[Sent], result: OutboundResult, settings: Settings, logs: LogWriter
) -> None:
    """Count every request of a chunk, and each message once, by the request that settled it."""
    for sent in requests:
        if sent.split:  # refused and resent as halves: its messages settle in those
            count_requests(sent.outcome, sent.size, result)
        else:
            record_outcome(
                sent.group,
                sent.outcome,
                sent.size,
                result,
                settings,
                logs,
                sent.note,
                unsettled=sent.unsettled,
            )


def count_requests(outcome: BatchOutcome, size: int, result: OutboundResult) -> None:
    """Count a request's attempts and bytes (its messages are counted where they settled)."""
    counts = result.counts
    counts.requests += len(outcome.attempts)
    counts.retries += len(outcome.attempts) - 1
    counts.bytes += size * len(outcome.attempts)


def record_outcome(
    group: MessageColumns,
    outcome: BatchOutcome | None,
    size: int,
    result: OutboundResult,
    settings: Settings,
    logs: LogWriter,
    note: str | None = None,
    *,
    unsettled: bool = False,
) -> None:
    """Count a request's messages and queue their `outbound_messages` rows.

    `outcome` None: the request was never sent (an earlier one failed for good). `note` adds
    to Segment's reason for a refused request (what splitting it found out). `unsettled`: a
    refused request the split budget left with several messages: pending, not failed (one
    bad message must not fail its neighbours); progress moves on, as for the failed ones.
    """
    counts, stream = result.counts, result.stream
    if outcome is None:
        counts.pending += len(group)
        error = "not sent: the run stopped after an earlier request failed; stays pending"
        columns = message_columns(group, result.run_id, stream, None, "pending", error)
        logs.extend_columns("outbound_messages", with_destination(columns, settings))
        return
    count_requests(outcome, size, result)
    last = outcome.last
    if outcome.verdict is Verdict.DELIVERED:
        counts.sent += len(group)
        outcome_name, error = "delivered", None
        answered_ms = (last.started_at.timestamp() + last.response_time_s) * 1000
        result.latencies.add(answered_ms - group.occurred_ms.to_numpy(zero_copy_only=False))
    elif outcome.verdict is Verdict.REJECTED:
        outcome_name, error = "failed", f"{last.error}; {note}" if note else last.error
        if unsettled:
            counts.pending += len(group)
            counts.unnarrowed += len(group)
            outcome_name = "pending"
        else:
            counts.failed += len(group)
    else:
        counts.pending += len(group)
        outcome_name = "pending"
        error = (
            f"{last.error} (after {len(outcome.attempts)} attempt(s)); stays pending for the "
            "next run"
        )
        if result.error is None:
            result.error_status = last.status_code
            result.error = (
                configuration_error(settings, last.status_code)
                or f"Segment request {last.identifier} failed: {error}"
            ) + (
                f". Progress is saved up to {stream.value} id {result.watermark_after}; "
                "the rest stays pending."
            )
    columns = message_columns(group, result.run_id, stream, last, outcome_name, error)
    logs.extend_columns("outbound_messages", with_destination(columns, settings))


def _destination(settings: Settings) -> dict[str, str]:
    """The `destination` column, with several destinations only (one keeps today's rows)."""
    name = settings.outbound.destination
    return {} if name is None else {"destination": name}


def with_destination(columns: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`outbound_messages` columns with the destination's name, when there are several."""
    name = settings.outbound.destination
    if name is None:
        return columns
    n = len(columns["message_id"])
    return {**columns, "destination": [name] * n}


def request_row(
    attempt: Attempt,
    group: MessageColumns,
    body: bytes,
    stream: Stream,
    run_id: str,
    settings: Settings,
    redactor: Redactor,
) -> dict[str, Any]:
    """The `outbound_log` row of one attempt: the manual's columns, bodies redacted."""
    customers = group.customers()
    return {
        "timestamp": attempt.started_at,
        "customer_id": customers[0].as_py() if len(customers) == 1 else None,
        "customer_ids": customers,
        "event_type": group.event_type,
        "status_code": attempt.status_code,
        "response_time_s": attempt.response_time_s,
        "error": attempt.error,
        "identifier": attempt.identifier,
        "run_id": run_id,
        "stream": stream.value,
        "attempt": attempt.attempt,
        "message_count": len(group),
        "request_bytes": len(body),
        "region": settings.outbound.region,
        **_destination(settings),
        "endpoint": redact_url(settings.outbound.endpoint),
        # Bytes: the log writer makes them a string column without a Python str of ~500 KB.
        "request_body": redactor.body(body),
        "response_body": attempt.response_body,
    }
