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
no attempt used. A 5xx other than 503, or a 2xx that is not a JSON object, may come after Antavo
registered that request's events: they are `unknown`, and the run stops all the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from segment_sync.antavo.client import AntavoClient, AntavoRequestRecord, EventResult
from segment_sync.directions import mappings_off
from segment_sync.gc_pauses import fewer_gc_pauses
from segment_sync.inbound.buffer import BufferItem, InboundBuffer
from segment_sync.inbound.customer_ids import CustomerLookup
from segment_sync.inbound.group_commit import GroupCommit
from segment_sync.inbound.ingest_chunks import NO_MATCH, ChunkMapping, _Chunk
from segment_sync.inbound.ingest_log import request_rows
from segment_sync.inbound.ingest_recording import _Planned
from segment_sync.inbound.ingest_result import (
    AntavoFaultError,
    CredentialError,
    IngestResult,
    NoMappingError,
    credential_message,
    service_message,
)
from segment_sync.inbound.lease import LeaseHeartbeat
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings
from segment_sync.signals import run_stoppably

__all__ = ["COLLECT_EVERY", "NO_MATCH", "InboundIngest"]

log = logging.getLogger(__name__)

# Items between full gc collections: each scans the live heap (30-45 ms in a 50,000-event run).
# Requests leave no reference cycles (RetryPolicy, the lean client), so little is found.
COLLECT_EVERY = 100_000


class InboundIngest(ChunkMapping):
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
        logs.redact_with(redactor)  # every row's text masked once, by the writer (ingest_log)
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
                self.logs.extend_lists("inbound_log", request_rows(record, result.run_id, sources))

            answers = await client.send_events([p.event for p in group], on_request)
            for plan, answer in zip(group, answers, strict=True):
                plan.result = answer
            # Still holding the slot: at most max_in_flight answered requests are unrecorded.
            await self._record_sent(group, result)
