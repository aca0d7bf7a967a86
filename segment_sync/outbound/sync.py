"""One outbound sync of a stream: read pending rows, build messages, batch, send, log, advance."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from segment_sync.directions import allow_list_off
from segment_sync.gc_pauses import fewer_gc_pauses
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.native_memory import bound_native_memory, trim_native_memory
from segment_sync.outbound.build import BuiltChunk, built_from_records
from segment_sync.outbound.columnar_build import ColumnarBuilder
from segment_sync.outbound.resend_rows import RowResend
from segment_sync.outbound.resharding import ensure_shard_count
from segment_sync.outbound.results import (
    OutboundCounts,
    OutboundFailed,
    OutboundResult,
    StreamDisabled,
)
from segment_sync.outbound.route_filter import RouteFilter
from segment_sync.outbound.send_chunk import send_chunk, with_unrouted
from segment_sync.outbound.shards import records_in_shard, shard_rows
from segment_sync.outbound.state import OutboundState
from segment_sync.redaction import Redactor
from segment_sync.segment.client import SegmentClient
from segment_sync.segment.messages import NotSent
from segment_sync.settings import Settings
from segment_sync.signals import run_stoppably, until_threads_done


def _collect() -> None:
    """Free the cycles a chunk's requests left (cheap: what existed before the run is frozen),
    and give the freed pages back."""
    gc.collect()
    trim_native_memory()


@dataclass(slots=True)
class _Settling:
    """A sent chunk whose log rows are being written: its progress waits for them."""

    flush: asyncio.Future
    last_id: int
    counts_before: OutboundCounts
    delivered: bool  # everything up to last_id was delivered (the run had no error yet)


class OutboundSync(RowResend):
    """Runs the outbound sync of one stream to the configured Segment destination."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: LoyaltyStore,
        state: OutboundState,
        client: Callable[[], SegmentClient],
        redactor: Redactor,
        logs: LogWriter,
        on_chunk: Callable[[OutboundResult], None] | None = None,
        route: RouteFilter | None = None,
    ) -> None:
        self.settings = settings
        self.route = route  # several destinations: only the rows routed to this one
        self._destination = settings.outbound.destination
        self.store = store
        self.state = state
        self._client = client
        self.redactor = redactor
        self.logs = logs
        logs.durable = True  # a chunk's log rows reach the disk before its watermark moves
        self.on_chunk = on_chunk
        self.stop_following = threading.Event()  # set: a follow run ends after its current pass

    def run(
        self, stream: Stream, run_id: str, upto: int | None = None, follow_s: float = 0.0
    ) -> OutboundResult:
        """Deliver every row of `stream` up to `upto` (default: the newest now); raises OutboundFailed.

        With `follow_s`, keep polling the store every `outbound.poll_interval_ms` for that long
        and send rows as they commit (micro-batches), holding the stream's lock; a run waiting
        for the lock (the successor, a reconciliation, a replay) gets it at the next poll.
        """
        off = allow_list_off(self.settings, stream)
        if off:
            raise StreamDisabled(off)
        ensure_shard_count(self.state, stream)
        bound_native_memory()
        # A follow run's successor starts early and waits here until the sender is done.
        with self.state.lock(stream, wait_s=max(60.0, follow_s)):
            return run_stoppably(self._run(stream, run_id, upto, follow_s))

    async def _run(
        self, stream: Stream, run_id: str, upto: int | None, follow_s: float
    ) -> OutboundResult:
        start = self.state.watermark(stream)
        newest = self.store.newest_id(stream)
        if start > newest:
            result = OutboundResult(
                stream, run_id, start, start, newest, destination=self._destination
            )
            result.error = self._ahead_error(stream, start, newest)
            raise OutboundFailed(result)
        # Never past an id whose transaction may still commit (see LoyaltyStore.max_id).
        safe = self.store.max_id(stream, floor=start)
        target = safe if upto is None else min(upto, safe)
        result = OutboundResult(stream, run_id, start, start, target, destination=self._destination)
        client = self._client()
        builder = ColumnarBuilder(self.settings, stream)
        deadline = time.monotonic() + follow_s
        poll_s = self.settings.outbound.poll_interval_ms / 1000
        try:
            with fewer_gc_pauses():
                await self._pass(client, builder, stream, result)
                while result.ok and upto is None and time.monotonic() + poll_s < deadline:
                    await asyncio.sleep(poll_s)
                    # Another run waits for the stream (a reconciliation, a replay, the next
                    # follow run): hand it over now rather than at the end of the window.
                    if self.stop_following.is_set() or await asyncio.to_thread(
                        self.state.others_waiting, stream
                    ):
                        break
                    floor = result.watermark_after
                    newest = await asyncio.to_thread(self.store.max_id, stream, floor)
                    if newest > floor:
                        result.upto = newest
                        await self._pass(client, builder, stream, result)
        finally:
            builder.close()
            await client.aclose()
            self._flush_logs(result)
        if not result.ok:
            raise OutboundFailed(result)
        return result

    async def _pass(
        self,
        client: SegmentClient,
        builder: ColumnarBuilder,
        stream: Stream,
        result: OutboundResult,
    ) -> None:
        """Send the rows from the watermark to `result.upto`, chunk by chunk."""
        target, chunk_size = result.upto, self.settings.outbound.chunk_size
        result.passes += 1
        shard = self.state.shard  # every shard reads the whole chunk and sends its customers'

        def read_and_build(after: int) -> tuple[BuiltChunk, int] | None:
            chunk = self.store.arrow_after(stream, after, target, chunk_size)
            if chunk is None:  # a row the Arrow read cannot carry: rows, built one by one
                rows = self.store.rows_after(stream, after, target, chunk_size)
                if not rows:
                    return None
                mine, unrouted = self._routed(records_in_shard(rows, shard), stream)
                built = built_from_records(mine, self.settings, stream)
                return with_unrouted(built, unrouted), rows[-1].id
            if not len(chunk):
                return None
            last = chunk["id"][-1].as_py()
            mine, unrouted = shard_rows(chunk, shard), []
            if self.route is not None:
                mine, unrouted = self.route.arrow(mine, stream)
            if not len(mine):
                return with_unrouted(built_from_records([], self.settings, stream), unrouted), last
            return with_unrouted(builder.build(mine), unrouted), last

        # The pass's threads, kept as they are: a cancelled asyncio future of one says nothing
        # of whether its thread still runs.
        threads = ThreadPoolExecutor(2, thread_name_prefix="outbound-pass")
        started: list[concurrent.futures.Future] = []

        def in_thread(func: Callable[..., Any], *args: Any) -> asyncio.Future:
            # Only unfinished threads are kept: a finished read's future holds its result (a
            # built chunk, request bodies and all) for as long as it is listed.
            started[:] = [job for job in started if not job.done()]
            started.append(threads.submit(func, *args))
            return asyncio.wrap_future(started[-1])

        def read(after: int) -> asyncio.Future:
            # In a thread, so the next chunk is read and built while this one's requests are in
            # flight (DuckDB and the database drivers release the GIL).
            return in_thread(read_and_build, after)

        start = result.watermark_after
        upcoming = read(start) if start < target else None
        settling: _Settling | None = None
        try:
            while upcoming is not None and result.ok:
                ready = await upcoming
                if ready is None:
                    break
                built, last = ready
                upcoming = read(last) if last < target else None
                counted = replace(result.counts)
                sending = send_chunk(
                    client, stream, built, result, self.settings, self.logs, self.redactor
                )
                await self._send_unless_unlogged(sending, settling)
                del built, ready, sending
                _collect()
                if settling is not None and not await self._settle(stream, result, settling):
                    break
                # This chunk's log rows are written while the next chunk is sent; its progress
                # is saved only once they are on disk.
                flush = in_thread(self._flush_logs, result)
                settling = _Settling(flush, last, counted, result.ok)
            if settling is not None:
                await self._settle(stream, result, settling)
                settling = None
        finally:
            # A thread cannot be interrupted, and the read holds the builder's DuckDB
            # connection: let them finish (one chunk each) before anything closes, also when a
            # second Ctrl-C cancels this wait (builder.close() then met the read still running:
            # a ResourceInUseException traceback).
            await until_threads_done(started)
            threads.shutdown(wait=False)

    @staticmethod
    async def _send_unless_unlogged(send: Awaitable[None], previous: _Settling | None) -> None:
        """Send a chunk while the previous one's log rows are written; if that write fails,
        no further request of this chunk starts (those in flight are abandoned, unlogged)."""
        sending = asyncio.ensure_future(send)
        try:
            if previous is not None:
                await asyncio.wait({sending, previous.flush}, return_when=asyncio.FIRST_COMPLETED)
                if not sending.done() and not previous.flush.result():
                    sending.cancel()
            await sending
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # the run itself is being stopped
                raise
        finally:
            if not sending.done():  # the run was stopped while waiting: stop the chunk too
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)

    async def _settle(self, stream: Stream, result: OutboundResult, chunk: _Settling) -> bool:
        """Save a sent chunk's progress once its log rows are written; False if they were not."""
        if not await chunk.flush:
            # Unlogged means not done: the watermark stays, the counts agree with the log, and
            # a rerun resends (Segment deduplicates by messageId).
            result.counts = chunk.counts_before
            return False
        if chunk.delivered:
            self.state.advance(stream, chunk.last_id, result.run_id)
            result.watermark_after = chunk.last_id
        if self.on_chunk:
            self.on_chunk(result)
        return True

    def _flush_logs(self, result: OutboundResult) -> bool:
        """Write the queued log rows; a failure becomes the run's error (the rows stay queued)."""
        try:
            self.logs.flush()
        except LogWriteError as exc:
            if result.error is None:
                result.error = str(exc)
            return False
        return True

    def _ahead_error(self, stream: Stream, watermark: int, newest: int) -> str:
        key = self.state.key
        return (
            f"the {stream.value} progress for loyalty store {key.source} is at id {watermark}, "
            f"but the store's newest {stream.value} id is {newest}: the store was rebuilt or "
            "replaced, so continuing would skip its rows; nothing was sent. Fix: if it is a new "
            "store, give it its own loyalty_store.url path, or delete its row from "
            f"outbound_progress in outbound.state_url (source = '{key.source}', "
            f"stream = '{stream.value}') to send it from its first row"
        )

    def _routed(self, rows: Sequence, stream: Stream) -> tuple[list, list[NotSent]]:
        """The rows this destination sends, and the failed rows routed nowhere."""
        if self.route is None:
            return list(rows), []
        return self.route.records(rows, stream)
