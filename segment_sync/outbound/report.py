"""Whether an outbound run (sync, replay, resync) failed, what kind of failure, and why.

A run fails when any message failed or stayed pending. The kind decides what retries:
- transient: something stayed pending after a 5xx, 429 or network error (a later run heals it),
  or in a refused request the split budget left whole (reconciliation or a replay resends it);
- configuration: Segment refused the key or endpoint (401/403/404); fix the setting first;
- permanent: only failed messages (a 400, a bad row, a missing ID); retrying cannot heal them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb

from segment_sync.logs.vanished import fetch_all
from segment_sync.logs.views import connect
from segment_sync.outbound.results import CONFIGURATION_STATUSES, OutboundCounts, OutboundResult

FailureKind = Literal["transient", "configuration", "permanent"]
TOP_REASONS = 5
PARTITION_SLACK = timedelta(days=1)

# Parts of a reason that name one row or customer; replaced so the same cause counts once.
_VARYING = [
    (re.compile(r"^(loyalty_events|profile_changes) id \d+: "), ""),  # the row a failure names
    (re.compile(r"\bcustomer \S+ has no\b"), "customer <id> has no"),
    (re.compile(r"\b(row|id) \d+\b"), r"\1 <n>"),
    (re.compile(r"\bmessage is \d+ bytes\b"), "message is <n> bytes"),
    (re.compile(r"\bSegment request [0-9a-f]{32}\b"), "Segment request <id>"),
]


def reason_key(error: str | None) -> str:
    """A reason with its row-specific parts (customer, row id, size) replaced."""
    text = error or "(no reason logged)"
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


def top_reasons(
    logs_dir: Path | str, run_id: str, started_at: datetime, limit: int = TOP_REASONS
) -> list[tuple[str, int]]:
    """The run's most common reasons for failed or pending messages, with counts."""
    oldest = (started_at.astimezone(UTC) - PARTITION_SLACK).date()
    with connect(logs_dir) as con:
        rows = fetch_all(
            con,
            """SELECT error, count(*) FROM outbound_messages
               WHERE "date" >= ? AND run_id = ? AND outcome IN ('failed', 'pending')
               GROUP BY error""",
            [oldest, run_id],
        )
    counts: Counter[str] = Counter()
    for error, n in rows:
        counts[reason_key(error)] += n
    return counts.most_common(limit)


@dataclass
class RunReport:
    """An outbound run's verdict: counts, kind of failure (None: everything handled), reasons."""

    counts: OutboundCounts
    kind: FailureKind | None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    stop_error: str | None = None  # the request failure that stopped the run, if any

    @property
    def failed(self) -> bool:
        return self.kind is not None

    @property
    def retryable(self) -> bool:
        """Whether an automatic retry can heal it (only a transient failure)."""
        return self.kind == "transient"

    @property
    def headline(self) -> str:
        c = self.counts
        hint = _KIND_HINT[self.kind] if self.kind else ""
        if self.kind == "transient" and c.unnarrowed:
            # Progress moved past these: the next run does not send them (outcomes.py).
            resend = (
                f"{c.unnarrowed} of them are in refused requests not narrowed to single "
                "messages: reconciliation or `segment-sync replay outbound` sends those again"
            )
            hint = resend if c.unnarrowed == c.pending else f"{hint}; {resend}"
        kind = f" ({self.kind}: {hint})" if self.kind else ""
        return (
            f"{c.failed} message(s) failed, {c.pending} stayed pending "
            f"(sent {c.sent}, skipped {c.skipped}){kind}"
        )

    def reason_lines(self) -> list[str]:
        return [f"{n:>8} x {reason}" for reason, n in self.reasons]

    @property
    def description(self) -> str:
        """One paragraph for the Dagster failure and the `sync_runs` error column."""
        parts = [self.headline]
        if self.stop_error:
            parts.append(self.stop_error)
        if self.reasons:
            parts.append("top reasons: " + "; ".join(f"{n} x {r}" for r, n in self.reasons))
        return ". ".join(parts)


_KIND_HINT: dict[str, str] = {
    "transient": "a later run retries what stayed pending",
    "configuration": "fix the setting this names; the messages stay pending",
    "permanent": "retrying cannot heal these; fix the cause, then `segment-sync replay outbound`",
}


def _configuration(status: int | None) -> bool:
    """A status that stopped a run because of a setting: the key, the region, the endpoint
    (a 2xx stops a run only when it is not Segment's answer: a portal or a proxy at base_url)."""
    return status in CONFIGURATION_STATUSES or (status is not None and 200 <= status < 300)


def classify(results: Sequence[OutboundResult]) -> FailureKind | None:
    """The failure kind of a run made of `results` (None when nothing failed or stayed pending)."""
    if any(_configuration(r.error_status) for r in results if r.error):
        return "configuration"
    if any(r.counts.pending or r.error for r in results):
        return "transient"
    if any(r.counts.failed for r in results):
        return "permanent"
    return None


def run_report(
    results: Sequence[OutboundResult], logs_dir: Path | str, run_id: str, started_at: datetime
) -> RunReport:
    """The verdict of a run; the reasons come from its own `outbound_messages` rows."""
    total = OutboundCounts()
    # Results may share one counts object (a reconciliation's running total): it counts once.
    for counts in {id(r.counts): r.counts for r in results}.values():
        total.add(counts)
    kind = classify(results)
    stop_error = next((r.error for r in results if r.error), None)
    report = RunReport(total, kind, stop_error=stop_error)
    if kind is not None:
        try:
            report.reasons = top_reasons(logs_dir, run_id, started_at)
        except duckdb.Error as exc:  # the verdict stands without its reasons
            report.reasons = [(f"reasons unavailable: {type(exc).__name__}: {exc}", 0)]
    return report
