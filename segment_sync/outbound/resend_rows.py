"""Sending exactly the rows a replay or reconciliation chose; the watermark does not move."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import LoyaltyEvent, ProfileChange, Stream
from segment_sync.outbound.build import built_from_records
from segment_sync.outbound.results import OutboundFailed, OutboundResult
from segment_sync.outbound.send_chunk import send_chunk, with_unrouted
from segment_sync.outbound.state import OutboundState
from segment_sync.redaction import Redactor
from segment_sync.segment.client import SegmentClient
from segment_sync.segment.messages import NotSent
from segment_sync.settings import Settings
from segment_sync.signals import run_stoppably


class RowResend:
    """`OutboundSync.send_rows`: the given rows sent as a run sends them, with no progress saved."""

    # Set by OutboundSync.__init__, or its methods.
    settings: Settings
    state: OutboundState
    _client: Callable[[], SegmentClient]
    redactor: Redactor
    logs: LogWriter
    _destination: str | None
    _flush_logs: Callable[[OutboundResult], bool]
    _routed: Callable[[Sequence, Stream], tuple[list, list[NotSent]]]

    def send_rows(
        self,
        stream: Stream,
        rows: Sequence[LoyaltyEvent] | Sequence[ProfileChange],
        run_id: str,
    ) -> OutboundResult:
        """Send exactly `rows` (e.g. found by reconciliation); the watermark does not move.

        Same messages, batching, client and log rows as `run`. The caller holds
        `self.state.lock(stream)` while it decides which rows to send and sends them, so no
        outbound run sends (or has sent but not yet logged) the same rows meanwhile.
        Raises OutboundFailed when a request failed for good; what was not delivered is logged
        as pending and stays undelivered (a later reconciliation finds it again).
        """
        return run_stoppably(self._send_rows(stream, rows, run_id))

    async def _send_rows(
        self,
        stream: Stream,
        rows: Sequence[LoyaltyEvent] | Sequence[ProfileChange],
        run_id: str,
    ) -> OutboundResult:
        watermark = self.state.watermark(stream)
        upto = max((row.id for row in rows), default=watermark)
        result = OutboundResult(
            stream, run_id, watermark, watermark, upto, destination=self._destination
        )
        outbound = self.settings.outbound
        client = self._client()
        try:
            for start in range(0, len(rows), outbound.chunk_size):
                chunk, unrouted = self._routed(rows[start : start + outbound.chunk_size], stream)
                built = with_unrouted(built_from_records(chunk, self.settings, stream), unrouted)
                counted = replace(result.counts)
                await send_chunk(
                    client, stream, built, result, self.settings, self.logs, self.redactor
                )
                # Logged before the next chunk goes: an unwritable log stops the resend here.
                if not await asyncio.to_thread(self._flush_logs, result):
                    result.counts = counted
                if not result.ok:
                    break
        finally:
            await client.aclose()
            self._flush_logs(result)
        if not result.ok:
            raise OutboundFailed(result)
        return result
