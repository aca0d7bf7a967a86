"""The recording of `InboundIngest`: answered requests' log rows written durably, then marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_sync.antavo.client import EventResult
from segment_sync.inbound.buffer import BufferItem, InboundBuffer
from segment_sync.inbound.group_commit import GroupCommit, Outcomes
from segment_sync.inbound.ingest_log import item_columns, item_row, unsent_row
from segment_sync.inbound.ingest_result import BufferMarkError, IngestResult, LogWriteError
from segment_sync.logs.store import LogWriteError as LogFileError
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor, error_kind
from segment_sync.settings.inbound import InboundSettings


@dataclass
class _Planned:
    """One Antavo event a mapping produced for a buffered item."""

    item: BufferItem
    mapping: str
    event: dict[str, Any]
    result: EventResult | None = None


class IngestRecording:
    """`InboundIngest`'s records: log rows and buffer marks of answered requests and unsent items."""

    # Set by InboundIngest.__init__.
    inbound: InboundSettings
    buffer: InboundBuffer
    redactor: Redactor
    logs: LogWriter
    _stopped: bool
    _outage: EventResult | None
    _commits: GroupCommit

    async def _record_sent(self, group: list[_Planned], result: IngestResult) -> None:
        by_item: dict[int, list[_Planned]] = {}
        for plan in group:
            by_item.setdefault(plan.item.id, []).append(plan)
        done: list[tuple[int, list[str]]] = []
        failed: list[tuple[int, str]] = []
        retry: list[tuple[int, str]] = []
        unknown: list[tuple[int, str]] = []
        partly: list[tuple[int, dict[str, str]]] = []  # items with some events registered
        answered: list[tuple[_Planned, str]] = []  # each sent event, its item's outcome
        max_attempts = self.inbound.max_attempts
        for item_id, plans in by_item.items():
            item = plans[0].item
            earlier = item.registered or {}
            bad = [p for p in plans if not p.result.ok]
            if not bad:  # most items: every event registered
                ids = [p.result.event_id or "" for p in plans]
                done.append((item_id, [*earlier.values(), *ids] if earlier else ids))
                answered += [(p, "done") for p in plans]
                continue
            if now := {p.mapping: p.result.event_id or "" for p in plans if p.result.ok}:
                partly.append((item_id, {**earlier, **now}))  # a replay skips them
            if any(p.result.auth_error for p in bad):
                continue  # not the data's fault: left pending, no attempt counted, no row
            outage = next((p.result for p in bad if p.result.fault), None)
            if outage is not None and not any(p.result.unknown for p in bad):
                self._outage = self._outage or outage
                continue  # as above: Antavo said nothing about these events
            if outage is not None:  # unknown (maybe registered), but nothing more is sent
                self._outage = self._outage or outage
            error = "; ".join(f"{p.mapping}: {p.result.error}" for p in bad)
            if any(p.result.unknown for p in bad):  # resending could register it twice
                unknown.append((item_id, error))
                outcome = "unknown"
            elif any(not p.result.retryable for p in bad) or item.attempts + 1 >= max_attempts:
                failed.append((item_id, error))
                outcome = "failed"
            else:
                retry.append((item_id, error))
                outcome = "retry"
            answered += [(p, outcome) for p in plans]
        registered = sum(1 for p in group if p.result.ok)
        try:
            columns = item_columns(self.redactor, result.run_id, answered)
            marks = Outcomes([], done, failed, retry, unknown, partly, columns)
            await self._commits.submit(marks, result)
        except LogWriteError:
            result.counts.unlogged += registered
            raise
        c = result.counts
        c.done += len(done)
        c.failed += len(failed)
        c.unknown += len(unknown)
        c.retried += len(retry)
        c.antavo_events += registered

    def _log_all(self, batches: list[Outcomes], result: IngestResult) -> None:
        """Write the log rows of several answered requests durably, in one write."""
        rows = [row for b in batches for row in b.rows]
        for row in rows:
            if row["error"]:
                result.errors[row["error"][:120]] += 1
        self.logs.extend("inbound_items", rows)
        for columns in (b.columns for b in batches if b.columns):
            for error in columns["error"]:
                if error:
                    result.errors[error[:120]] += 1
            self.logs.extend_lists("inbound_items", columns)
        try:
            self.logs.flush()
        except (LogFileError, OSError) as exc:  # disk full, no permission, an I/O error
            self._stopped = True  # no request starts after this; those in flight finish
            cause = exc.cause if isinstance(exc, LogFileError) else exc
            reason = f"{cause.strerror or cause}" + (
                f": {cause.filename}" if cause.filename else ""
            )
            raise LogWriteError(
                f"could not write the inbound log under logs.dir ({self.logs.logs_dir}): {reason};"
                " sending stopped, and the items of the requests in flight were not marked and"
                " will be retried (Antavo may register those twice). Free space or fix logs.dir,"
                " then rerun",
                result,
            ) from None

    def _mark_all(self, batches: list[Outcomes], result: IngestResult) -> None:
        """Move the buffer status of items whose log rows are written, in one commit."""
        done = [x for b in batches for x in b.done]
        failed = [x for b in batches for x in b.failed]
        retry = [x for b in batches for x in b.retry]
        unknown = [x for b in batches for x in b.unknown]
        registered = [x for b in batches for x in b.registered]
        if not (done or failed or retry or unknown or registered):
            return
        try:
            self.buffer.mark_many(
                done=done,
                failed=failed,
                retry=retry,
                unknown=unknown,
                max_attempts=self.inbound.max_attempts,
                registered=registered,
            )
        except Exception as exc:  # a locked or full buffer database, a lost connection
            # Items answered but not marked are sent again by the next run (Antavo has no
            # idempotency key): no request may start after this one.
            self._stopped = True
            marks = len(done) + len(failed) + len(retry) + len(unknown)
            raise BufferMarkError(
                f"could not record Antavo's answers for {marks} item(s) in the inbound buffer "
                f"(inbound.buffer_url): {error_kind(exc)}; sending stopped, those items stay "
                "pending and the next run sends them again (Antavo may register them twice). "
                "Fix the buffer database, then rerun",
                result,
            ) from None

    def _row(
        self,
        item: BufferItem,
        result: IngestResult,
        mapping: str | None,
        outcome: str,
        event: dict[str, Any] | None = None,
        answer: EventResult | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        return item_row(self.redactor, item, result.run_id, mapping, outcome, event, answer, error)

    def _unsent(
        self,
        item: BufferItem,
        result: IngestResult,
        mapping: str | None,
        status: str,
        error: str,
        event: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return unsent_row(self.redactor, item, result.run_id, mapping, status, error, event)
