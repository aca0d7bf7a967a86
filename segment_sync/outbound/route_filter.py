"""The rows of a chunk that one destination sends, by the customers' routing attribute.

Every destination's run reads the whole stream (as every shard does) and keeps the rows routed
to it. A row routed nowhere (no value and no `outbound.route_by.default`) is one failed message,
reported by the first destination listed only, so it is counted once; a row that would not be
sent anyway (not allow-listed, an echo of an inbound event) stays with the first destination,
whose builder counts it as before.

Each row's destination is decided once and stored (route_decisions.py): a destination that
reads a row after a backdated profile change routes it as the first reader did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import pyarrow as pa

from segment_sync.loyalty.records import ORIGIN_SEGMENT, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.loyalty.stored_time import time_or_none
from segment_sync.outbound.build import EVENT_TYPES, unbuilt_message_id
from segment_sync.outbound.route_decisions import RouteDecisions
from segment_sync.outbound.routing import History, Route, routes
from segment_sync.segment.messages import NotSent
from segment_sync.settings import Settings
from segment_sync.settings.destinations import RouteBySettings

R = TypeVar("R")
_MAX_CACHED_CUSTOMERS = 500_000  # past this, histories are read again (memory stays bounded)
_TABLES = {Stream.EVENTS: "loyalty_events", Stream.PROFILES: "profile_changes"}


class _Row:
    """Enough of a row to name its messageId."""

    __slots__ = ("id", "occurred_at")

    def __init__(self, row_id: int, occurred_at: datetime | None) -> None:
        self.id, self.occurred_at = row_id, occurred_at


class RouteFilter:
    """Keeps the rows routed to `destination` (see routing.py for the rule)."""

    def __init__(
        self,
        store: LoyaltyStore,
        rule: RouteBySettings,
        destination: str,
        *,
        reports_unrouted: bool,
        event_sync: Sequence[str],
        decisions: RouteDecisions | None = None,
    ) -> None:
        self.store, self.rule, self.destination = store, rule, destination
        self.decisions = decisions  # None: computed afresh each time (no state database)
        self.reports_unrouted = reports_unrouted
        self._allowed = frozenset(event_sync)
        # Per run (a RouteFilter lives as long as its sync): customer -> routing history, and
        # the profile change id up to which every cached history is complete.
        self._history: dict[str, History] = {}
        self._loaded_upto = 0

    @classmethod
    def of(
        cls, settings: Settings, store: LoyaltyStore, *, record: bool = True
    ) -> RouteFilter | None:
        """The filter of the destination the settings serve (`Settings.for_destination`);
        None for the single destination. `record=False` (a dry run) stores no decision."""
        outbound = settings.outbound
        name = outbound.destination
        if name is None or outbound.route_by is None:
            return None
        return cls(
            store,
            outbound.route_by,
            name,
            reports_unrouted=name == outbound.destinations[0].name,
            event_sync=outbound.event_sync,
            decisions=RouteDecisions(outbound.state_url, store.url, record=record),
        )

    def _routes(self, stream: Stream, customers: list, times: list, ids: list) -> list[Route]:
        if self.decisions is None:
            return self._computed(stream, customers, times, ids)
        at = {i: n for n, i in enumerate(ids)}

        def compute(ask: list[int]) -> list[Route]:
            rows = [at[i] for i in ask]
            picked = ([customers[n] for n in rows], [times[n] for n in rows])
            return self._computed(stream, *picked, ask)

        decided = self.decisions.settle(stream, ids, compute)
        return [decided[i] for i in ids]

    def _computed(self, stream: Stream, customers: list, times: list, ids: list) -> list[Route]:
        histories = self._histories({c for c in customers if isinstance(c, str)})
        return routes(self.rule, histories, stream, customers, times, ids)

    def _histories(self, customers: set[str]) -> dict[str, History]:
        """The routing histories of these customers, complete up to the store's safe newest
        profile change: read once per customer per run, then only the changes since."""
        store, attribute = self.store, self.rule.attribute
        upto = store.max_id(Stream.PROFILES, floor=self._loaded_upto)
        if len(self._history) > _MAX_CACHED_CUSTOMERS:
            self._history.clear()
        if upto > self._loaded_upto and self._history:
            newer = store.attribute_history(
                None, attribute, after_id=self._loaded_upto, upto_id=upto
            )
            for customer, entries in newer.items():
                if customer in self._history:
                    merged = self._history[customer] + entries
                    merged.sort(key=lambda h: (h[0], h[1]))
                    self._history[customer] = merged
        missing = [c for c in customers if c not in self._history]
        if missing:
            fetched = store.attribute_history(missing, attribute, upto_id=upto)
            for customer in missing:
                self._history[customer] = fetched.get(customer, [])
        self._loaded_upto = upto
        return self._history

    def _would_send(self, stream: Stream, action: object, origin: object) -> bool:
        if origin == ORIGIN_SEGMENT:
            return False
        return stream is Stream.PROFILES or action in self._allowed

    def _decide(
        self, stream: Stream, customers: list, times: list, ids: list, actions: list, origins: list
    ) -> tuple[list[bool], list[NotSent]]:
        keep: list[bool] = []
        failed: list[NotSent] = []
        table, event_type = _TABLES[stream], EVENT_TYPES[stream]
        for r, c, t, i, a, o in zip(
            self._routes(stream, customers, times, ids), customers, times, ids, actions, origins,
            strict=True,
        ):  # fmt: skip
            if r.destination is not None:
                keep.append(r.destination == self.destination)
            elif not self._would_send(stream, a, o):
                keep.append(self.reports_unrouted)
            else:
                keep.append(False)
                if self.reports_unrouted:
                    mid = unbuilt_message_id(_Row(i, t), stream)
                    action = a if stream is Stream.EVENTS else None
                    reason = f"{table} id {i}: {r.reason}"
                    failed.append(NotSent(mid, i, c, event_type, action, "failed", reason))
        return keep, failed

    def arrow(self, chunk: pa.Table, stream: Stream) -> tuple[pa.Table, list[NotSent]]:
        """The rows of an Arrow chunk routed here, and the failed rows routed nowhere."""
        if not len(chunk):
            return chunk, []
        customers = chunk["customer_id"].to_pylist()
        times = [time_or_none(t) for t in chunk["occurred_at"].to_pylist()]
        ids = chunk["id"].to_pylist()
        actions = chunk["action"].to_pylist() if stream is Stream.EVENTS else [None] * len(ids)
        origins = chunk["origin"].to_pylist()
        keep, failed = self._decide(stream, customers, times, ids, actions, origins)
        return chunk.filter(pa.array(keep, pa.bool_())), failed

    def records(self, rows: Sequence[R], stream: Stream) -> tuple[list[R], list[NotSent]]:
        """`arrow` for records; a bad row without a readable customer stays with the first."""
        customers = [getattr(r, "customer_id", None) for r in rows]
        times = [getattr(r, "occurred_at", None) for r in rows]
        ids = [r.id for r in rows]
        actions = [getattr(r, "action", None) for r in rows]
        origins = [getattr(r, "origin", None) for r in rows]
        keep, failed = self._decide(stream, customers, times, ids, actions, origins)
        return [r for r, k in zip(rows, keep, strict=True) if k], failed
