"""A claimed chunk mapped to Antavo requests: unsent items recorded, the requests started."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from segment_sync.antavo.client import MAX_BULK_EVENTS, AntavoClient
from segment_sync.inbound.buffer import BufferItem
from segment_sync.inbound.customer_ids import (
    CustomerLookup,
    external_ids,
    resolve_customers,
    to_antavo_customers,
)
from segment_sync.inbound.group_commit import Outcomes
from segment_sync.inbound.ingest_recording import IngestRecording, _Planned
from segment_sync.inbound.ingest_result import CustomerStoreError, IngestResult
from segment_sync.inbound.item_gate import ItemFault, through_gate_all
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import MappingOutcome, apply_mappings
from segment_sync.redaction import error_kind

NO_MATCH = "no enabled mapping's trigger matched this event"


def any_error(outcomes: list[MappingOutcome]) -> bool:
    """Whether a mapping of the event failed (a loop, not any(): most events have one outcome)."""
    for outcome in outcomes:  # noqa: SIM110
        if outcome.error:
            return True
    return False


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


class ChunkMapping(IngestRecording):
    """`InboundIngest._start`: a chunk's items through the gate and mappings, grouped per request."""

    # Set by InboundIngest.__init__, or its methods.
    mappings: list[Mapping]
    _customers: CustomerLookup | None
    _send: Callable[..., Awaitable[None]]

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
        gated = through_gate_all(
            items, partial(apply_mappings, self.mappings, multi_accounts=multi)
        )
        mapped = []
        for item, outcome in gated:
            if not isinstance(outcome, ItemFault):
                mapped.append((item, outcome))
                continue
            # The buffer's last error and the inbound log's row name the item; inbound_items
            # has its ids in columns and the problem alone, so the run's top reasons group.
            unsent_failed.append((item.id, outcome.reason))
            rows.append(self._row(item, result, None, "failed", error=outcome.problem))
            log_rows.append(self._unsent(item, result, None, "error", outcome.reason))
        if self._customers is not None:
            wanted = {i for _, outcomes in mapped for i in external_ids(outcomes)}
            known, refused = await self._resolve_customers(wanted, result)
            mapped = [
                (item, to_antavo_customers(outcomes, known, refused)) for item, outcomes in mapped
            ]
        finished: list[tuple[int, list[str]]] = []  # every event registered by earlier tries
        group = groups[-1]
        for item, outcomes in mapped:
            if item.registered:  # never send an event Antavo registered again
                outcomes = [o for o in outcomes if o.mapping_name not in item.registered]
                if not outcomes:
                    finished.append((item.id, list(item.registered.values())))
                    continue
            if not outcomes:
                unsent_done.append((item.id, []))
                rows.append(self._row(item, result, None, "no_match", error=NO_MATCH))
                log_rows.append(self._unsent(item, result, None, "skipped", NO_MATCH))
            elif any_error(outcomes):
                self._unsent_failed(item, outcomes, result, unsent_failed, rows, log_rows)
            else:
                # One group per Antavo request: an item's events never straddle two groups.
                if group and len(group) + len(outcomes) > MAX_BULK_EVENTS:
                    group = []
                    groups.append(group)
                for o in outcomes:
                    group.append(_Planned(item, o.mapping_name, o.antavo_event))
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

    def _unsent_failed(
        self,
        item: BufferItem,
        outcomes: list[MappingOutcome],
        result: IngestResult,
        unsent_failed: list[tuple[int, str]],
        rows: list[dict[str, Any]],
        log_rows: list[dict[str, Any]],
    ) -> None:
        """An item some mapping failed for: it fails, none of its events is sent."""
        errors = [f"{o.mapping_name}: {o.error}" for o in outcomes if o.error]
        unsent_failed.append((item.id, "; ".join(errors)))
        for o in outcomes:
            error = o.error or "another mapping of this event failed"
            rows.append(
                self._row(item, result, o.mapping_name, "failed", o.antavo_event, None, error)
            )
            log_rows.append(
                self._unsent(item, result, o.mapping_name, "error", error, o.antavo_event)
            )

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
