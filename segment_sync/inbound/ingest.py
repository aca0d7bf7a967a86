"""One inbound ingest: buffered Segment events -> mappings -> Antavo Events API -> inbound log.

Claims are leases renewed by a heartbeat (`inbound.lease_s`), so a killed run's items are taken
over by the next run within seconds. Items are recorded per Antavo request, not per chunk: as soon
as a request is answered its log rows are written durably and only then are its items marked, so a
kill repeats at most the requests in flight (`max_in_flight` x 50 events) and a failed log write
leaves the items pending. Antavo's Events API has no idempotency key: a repeated request registers
its events again, so an item whose outcome Antavo's answer leaves open is marked `unknown`, never
failed or retried: only `replay inbound --include-unknown` sends it again; for the same reason an
item's events Antavo registered are kept (BufferItem.registered) and never sent again on a retry
or a replay. Only Antavo's answer about an event fails it: Antavo down, throttling, unreachable
or not at inbound.base_url (EventResult.fault) stops sending and fails the run, items pending with
no attempt used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from segment_sync.antavo.client import (
    MAX_BULK_EVENTS,
    AntavoClient,
    AntavoRequestRecord,
    EventResult,
)
from segment_sync.directions import mappings_off
from segment_sync.gc_pauses import fewer_gc_pauses
from segment_sync.inbound.buffer import BufferItem, InboundBuffer
from segment_sync.inbound.customer_ids import (
    CustomerLookup,
    external_ids,
    resolve_customers,
    to_antavo_customers,
)
from segment_sync.inbound.group_commit import GroupCommit, Outcomes
from segment_sync.inbound.ingest_log import item_row, request_rows, unsent_row
from segment_sync.inbound.ingest_result import (
    AntavoFaultError,
    BufferMarkError,
    CredentialError,
    CustomerStoreError,
    IngestResult,
    LogWriteError,
    NoMappingError,
    credential_message,
    service_message,
)
from segment_sync.inbound.item_gate import ItemFault, through_gate_all
from segment_sync.inbound.lease import LeaseHeartbeat
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import apply_mappings
from segment_sync.logs.store import LogWriteError as LogFileError
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor, error_kind
from segment_sync.settings import Settings
from segment_sync.signals import run_stoppably

log = logging.getLogger(__name__)

NO_MATCH = "no enabled mapping's trigger matched this event"
# Items between full gc collections: each scans the live heap (30-45 ms in a 50,000-event run).
# Requests leave no reference cycles (RetryPolicy, the lean client), so little is found.
COLLECT_EVERY = 100_000


@dataclass
class _Planned:
    """One Antavo event a mapping produced for a buffered item."""

    item: BufferItem
    mapping: str
    event: dict[str, Any]
    result: EventResult | None = None


class _Chunk:
    """A claimed chunk's requests: `started` is set once each holds a slot (or is done)."""

    def __init__(self, groups: list[list[_Planned]]) -> None:
        self.groups = groups
        self.sends: list[asyncio.Task] = []
        self.started = asyncio.Event()
        self._waiting = len(groups)
        if not groups:
            self.started.set()

    def entered(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self.started.set()


class InboundIngest:
    """Processes the buffer in bounded chunks; every item ends done, failed or back to pending."""

    def __init__(
        self,
        settings: Settings,
        *,
        buffer: InboundBuffer,
        client: Callable[[Callable[[AntavoRequestRecord], None] | None], AntavoClient],
        redactor: Redactor,
        logs: LogWriter,
        customers: CustomerLookup | None = None,
    ) -> None:
        """`customers` resolves external customer IDs (general.customer_id_mapping is
        external_customer_id); None takes the mapped customer as the Antavo customer ID."""
        self.settings = settings
        self._customers = customers
        self.inbound = settings.inbound
        self.buffer = buffer
        self._client = client
        self.redactor = redactor
        # Log rows must survive a crash before the items they describe are marked done.
        logs.durable = True
        self.logs = logs
        self.mappings: list[Mapping] = self.inbound.active_mappings()
        self._stopped = False  # a log write or a buffer mark failed: send nothing more
        # Antavo down, throttling or not at the base URL: send nothing more, fail the run.
        self._outage: EventResult | None = None
        # Log rows are durable before their items are marked: a crash never marks an unlogged item.
        self._commits = GroupCommit(self._log_all, self._mark_all)

    def run(self, run_id: str, upto: int | None = None) -> IngestResult:
        """Process every item pending now (ids up to `upto`, default the newest).

        Raises IngestError (NoMappingError, CredentialError, AntavoFaultError, LogWriteError...)
        when it stopped early.
        """
        result = IngestResult(run_id, self.buffer.max_id() if upto is None else upto)
        off = mappings_off(self.settings)
        if off is not None:
            result.counts.left_pending = self.buffer.pending_count()
            raise NoMappingError(f"{off}; {result.counts.left_pending} item(s) pending", result)
        try:
            # Each event allocates dozens of containers: default gc thresholds spent about a
            # third of the run's CPU in collections (see gc_pauses).
            with LeaseHeartbeat(self.buffer, run_id, self.inbound.lease_s), fewer_gc_pauses():
                run_stoppably(self._run(result))
        finally:
            try:
                result.counts.left_pending += self.buffer.release(run_id)
            except Exception as exc:  # the lease lapses on its own; do not hide the run's error
                log.warning("could not release the claims of run %s: %s", run_id, exc)
        return result

    async def _run(self, result: IngestResult) -> None:
        client = self._client(None)  # each send logs its own requests (see _send)
        # Requests sent but not yet recorded: at most this many are repeated after a kill.
        slots = asyncio.Semaphore(self.inbound.max_in_flight)
        try:
            await self._stream(client, slots, result)
            await self._take_over(client, slots, result)
        finally:
            await client.aclose()

    async def _stream(
        self, client: AntavoClient, slots: asyncio.Semaphore, result: IngestResult
    ) -> None:
        """Claim chunk k+1 (in a thread) as soon as every request of chunk k holds a slot, while
        chunk k-1's are still in flight: the requests never drain between chunks, and a paced
        run claims little more than it is about to send (other runs share the rest)."""
        chunks: list[_Chunk] = []
        collected = 0
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-claim") as claimer:
            ahead = claimer.submit(self._claim, result, after_id=0)
            try:
                while items := await asyncio.wrap_future(ahead):
                    chunks.append(await self._start(client, slots, items, result))
                    await chunks[-1].started.wait()
                    ahead = claimer.submit(self._claim, result, after_id=items[-1].id)
                    if len(chunks) > 1:
                        await self._finish(client, chunks.pop(0).sends, result)
                    if result.counts.items - collected >= COLLECT_EVERY:
                        gc.collect()  # the cycles requests left (see gc_pauses), now and then
                        collected = result.counts.items
                while chunks:
                    await self._finish(client, chunks.pop(0).sends, result)
            except BaseException as exc:
                # A stop cancels the requests not yet answered (an answered one is recorded
                # first, see GroupCommit); after an error the started ones finish and record.
                rest = [task for chunk in chunks for task in chunk.sends]
                if isinstance(exc, asyncio.CancelledError):
                    for task in rest:
                        task.cancel()
                await asyncio.gather(*rest, return_exceptions=True)
                raise
            finally:
                # A claim still running commits before the run gives its claims back.
                concurrent.futures.wait([ahead])

    def _claim(self, result: IngestResult, **kwargs: Any) -> list[BufferItem]:
        inbound = self.inbound
        return self.buffer.claim(
            result.run_id,
            inbound.chunk_size,
            inbound.max_attempts,
            stale_after_s=inbound.lease_s,
            up_to_id=result.upto,
            **kwargs,
        )

    async def _take_over(
        self, client: AntavoClient, slots: asyncio.Semaphore, result: IngestResult
    ) -> None:
        """Wait (up to 1.5 leases) for other runs' claims to lapse and process those items.

        A killed run's claims lapse within one lease; a live run keeps renewing, and is left alone.
        """
        lease_s = self.inbound.lease_s
        deadline = time.monotonic() + lease_s * 1.5
        while held := self.buffer.held_elsewhere(
            result.run_id, result.upto, self.inbound.max_attempts
        ):
            if items := self._claim(result, only_claimed=True):
                await self._process(client, slots, items, result)
                continue
            if time.monotonic() >= deadline:
                result.counts.held_elsewhere = held
                return
            await asyncio.sleep(min(1.0, lease_s / 6))

    async def _process(
        self,
        client: AntavoClient,
        slots: asyncio.Semaphore,
        items: list[BufferItem],
        result: IngestResult,
    ) -> None:
        await self._finish(client, (await self._start(client, slots, items, result)).sends, result)

    async def _finish(
        self, client: AntavoClient, sends: list[asyncio.Task], result: IngestResult
    ) -> None:
        """Wait for a chunk's requests; every one finishes (and is recorded) before an error
        stops the run."""
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        if client.auth_failure is not None:
            pending = self.buffer.pending_count()
            raise CredentialError(
                credential_message(self.inbound, client.auth_failure, pending), result
            )
        if self._outage is not None:
            pending = self.buffer.pending_count()
            raise AntavoFaultError(service_message(self.inbound, self._outage, pending), result)

    async def _start(
        self,
        client: AntavoClient,
        slots: asyncio.Semaphore,
        items: list[BufferItem],
        result: IngestResult,
    ) -> _Chunk:
        """Map a chunk, record its unsent items, and start its requests (each waits for a slot)."""
        result.counts.items += len(items)
        unsent_done: list[tuple[int, list[str]]] = []
        unsent_failed: list[tuple[int, str]] = []
        rows: list[dict[str, Any]] = []
        log_rows: list[dict[str, Any]] = []  # inbound_log rows of events never sent
        groups: list[list[_Planned]] = [[]]
        multi = self.inbound.multi_accounts
        gated = through_gate_all(items, lambda event: apply_mappings(self.mappings, event, multi))
        mapped = [(i, o) for i, o in gated if not isinstance(o, ItemFault)]
        for item, fault in ((i, o) for i, o in gated if isinstance(o, ItemFault)):
            # The buffer's last error and the inbound log's row name the item; inbound_items
            # has its ids in columns and the problem alone, so the run's top reasons group.
            unsent_failed.append((item.id, fault.reason))
            rows.append(self._row(item, result, None, "failed", error=fault.problem))
            log_rows.append(self._unsent(item, result, None, "error", fault.reason))
        if self._customers is not None:
            wanted = {i for _, outcomes in mapped for i in external_ids(outcomes)}
            known, refused = await self._resolve_customers(wanted, result)
            mapped = [
                (item, to_antavo_customers(outcomes, known, refused)) for item, outcomes in mapped
            ]
        finished: list[tuple[int, list[str]]] = []  # every event registered by earlier tries
        for item, outcomes in mapped:
            if item.registered:  # never send an event Antavo registered again
                outcomes = [o for o in outcomes if o.mapping_name not in item.registered]
                if not outcomes:
                    finished.append((item.id, list(item.registered.values())))
                    continue
            errors = [f"{o.mapping_name}: {o.error}" for o in outcomes if o.error]
            if not outcomes:
                unsent_done.append((item.id, []))
                rows.append(self._row(item, result, None, "no_match", error=NO_MATCH))
                log_rows.append(self._unsent(item, result, None, "skipped", NO_MATCH))
            elif errors:
                unsent_failed.append((item.id, "; ".join(errors)))
                for o in outcomes:
                    error = o.error or "another mapping of this event failed"
                    rows.append(
                        self._row(
                            item, result, o.mapping_name, "failed", o.antavo_event, None, error
                        )
                    )
                    log_rows.append(
                        self._unsent(item, result, o.mapping_name, "error", error, o.antavo_event)
                    )
            else:
                # One group per Antavo request: an item's events never straddle two groups.
                if groups[-1] and len(groups[-1]) + len(outcomes) > MAX_BULK_EVENTS:
                    groups.append([])
                groups[-1] += [_Planned(item, o.mapping_name, o.antavo_event) for o in outcomes]
        if rows or log_rows or finished:
            # Through the group commit: no two flushes run at once, so a flush never returns
            # while another still writes rows it took (and marks would then come first).
            self.logs.extend("inbound_log", log_rows)  # written by the same durable flush
            marks = Outcomes(rows, unsent_done + finished, unsent_failed, [])
            await self._commits.submit(marks, result)
        result.counts.done += len(finished)
        result.counts.no_match += len(unsent_done)
        result.counts.failed += len(unsent_failed)
        chunk = _Chunk([g for g in groups if g])
        chunk.sends = [
            asyncio.ensure_future(self._send(client, slots, g, result, chunk.entered))
            for g in chunk.groups
        ]
        return chunk

    async def _resolve_customers(
        self, wanted: set[str], result: IngestResult
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Known and unreadable external IDs; a store that cannot answer stops the run."""
        if not wanted or self._customers is None:
            return {}, {}
        try:
            return await asyncio.to_thread(resolve_customers, self._customers, wanted)
        except Exception as exc:  # the store is down or broken: no item's fault
            raise CustomerStoreError(
                "the loyalty store (loyalty_store.url) could not look up external customer IDs "
                f"(general.customer_id_mapping is external_customer_id): {error_kind(exc)}; "
                "the claimed items stay pending. Check the store, then rerun",
                result,
            ) from None

    async def _send(
        self,
        client: AntavoClient,
        slots: asyncio.Semaphore,
        group: list[_Planned],
        result: IngestResult,
        entered: Callable[[], None] = lambda: None,
    ) -> None:
        """Send one request's events, then record its items at once (log first, then buffer)."""
        async with slots:
            entered()
            if client.auth_failure is not None or self._stopped or self._outage is not None:
                return  # the items stay claimed until the run releases them, untouched
            sources = [(p.item, p.mapping) for p in group]

            def on_request(record: AntavoRequestRecord) -> None:
                result.counts.requests += 1
                self.logs.extend("inbound_log", request_rows(record, result.run_id, sources))

            answers = await client.send_events([p.event for p in group], on_request)
            for plan, answer in zip(group, answers, strict=True):
                plan.result = answer
            # Still holding the slot: at most max_in_flight answered requests are unrecorded.
            await self._record_sent(group, result)

    async def _record_sent(self, group: list[_Planned], result: IngestResult) -> None:
        by_item: dict[int, list[_Planned]] = {}
        for plan in group:
            by_item.setdefault(plan.item.id, []).append(plan)
        done: list[tuple[int, list[str]]] = []
        failed: list[tuple[int, str]] = []
        retry: list[tuple[int, str]] = []
        unknown: list[tuple[int, str]] = []
        partly: list[tuple[int, dict[str, str]]] = []  # items with some events registered
        rows: list[dict[str, Any]] = []
        max_attempts = self.inbound.max_attempts
        for item_id, plans in by_item.items():
            item = plans[0].item
            earlier = item.registered or {}
            bad = [p for p in plans if not p.result.ok]
            if not bad:  # most items: every event registered
                ids = [p.result.event_id or "" for p in plans]
                done.append((item_id, [*earlier.values(), *ids] if earlier else ids))
                rows += [
                    self._row(item, result, p.mapping, "done", p.event, p.result) for p in plans
                ]
                continue
            if now := {p.mapping: p.result.event_id or "" for p in plans if p.result.ok}:
                partly.append((item_id, {**earlier, **now}))  # a replay skips them
            if any(p.result.auth_error for p in bad):
                continue  # not the data's fault: left pending, no attempt counted, no row
            outage = next((p.result for p in bad if p.result.fault), None)
            if outage is not None and not any(p.result.unknown for p in bad):
                self._outage = self._outage or outage
                continue  # as above: Antavo said nothing about these events
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
            rows += [self._row(item, result, p.mapping, outcome, p.event, p.result) for p in plans]
        registered = sum(1 for p in group if p.result.ok)
        try:
            marks = Outcomes(rows, done, failed, retry, unknown, partly)
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
        if not (done or failed or retry or unknown):
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
