"""Each row's destination, decided once and stored, so every destination routes it alike.

The routing rule (routing.py) reads the customer's profile history, which can change after a
row is written (a profile change committed later with an earlier `occurred_at`). Destinations
read a row at different times, so computed afresh each could disagree: the row sent by two, or
by none. The first reader's decision is stored (insert-if-absent, keyed by store, stream and
row id, in the outbound state database) and every later reader (other destinations,
reconciliation, replay, resync) reads it. A row routed nowhere is stored too (destination
NULL) and may later be routed once its customer has a value (a fix, then replay): it moves
from nowhere to one destination once, atomically, never from one destination to another.

Decisions older than the logs' retention are forgotten by the hourly maintenance
(`prune_decisions`), so the table holds one retention window of rows, not every row ever sent.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence

import sqlalchemy as sa

from segment_sync.db import Url, create_engine, create_tables, database_identity
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.routing import Route
from segment_sync.redaction import reveal

metadata = sa.MetaData()

decisions = sa.Table(
    "outbound_route_decisions",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),  # database_identity of the loyalty store
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("row_id", sa.BigInteger, primary_key=True),
    sa.Column("destination", sa.Text),  # NULL: routed nowhere (see `reason`)
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.Float, nullable=False),  # unix time
)
by_age = sa.Index("ix_outbound_route_decisions_decided_at", decisions.c.decided_at)  # pruning
PRUNE_STEP_S = 3600.0  # one transaction per hour of decisions: never one huge delete


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    """One engine per state database per process (every RouteFilter shares it); few are
    open at once (an evicted engine closes its connections when collected)."""
    engine = create_engine(url, durable=True, setting="outbound.state_url")
    create_tables(engine, metadata)
    try:  # a table made before the index existed gets it; a concurrent creator may win the race
        by_age.create(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).get_indexes(decisions.name):
            raise
    return engine


def prune_decisions(state_url: Url, older_than_days: float) -> int:
    """Forget the decisions made more than `older_than_days` ago; returns how many.

    Their rows' delivery logs are gone by then, reconciliation looks back less far, and every
    destination has long sent them; a row replayed or resynced later is routed afresh.
    """
    cutoff = time.time() - older_than_days * 86_400
    engine, removed = _engine(reveal(state_url)), 0
    with engine.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(decisions.c.decided_at))).scalar()
    while oldest is not None and oldest < cutoff:
        oldest = min(oldest + PRUNE_STEP_S, cutoff)
        with engine.begin() as conn:  # short transactions: runs storing decisions are not held up
            removed += conn.execute(
                decisions.delete().where(decisions.c.decided_at < oldest)
            ).rowcount
    return removed


class RouteDecisions:
    """The stored routing decisions of one loyalty store."""

    def __init__(self, state_url: Url, store_url: Url, *, record: bool = True) -> None:
        self.engine = _engine(reveal(state_url))
        self.source = database_identity(store_url)
        self.record = record  # False (a dry run): read stored decisions, store none

    def settle(
        self, stream: Stream, ids: Sequence[int], compute: Callable[[list[int]], list[Route]]
    ) -> dict[int, Route]:
        """The route of each id: the stored one, else `compute`d, stored if absent, re-read."""
        wanted = list(dict.fromkeys(ids))
        known = self._read(stream, wanted)
        # A stored "nowhere" is asked again: the customer may have a value now (moves once).
        ask = [i for i in wanted if i not in known or known[i].destination is None]
        if not ask:
            return known
        fresh = dict(zip(ask, compute(ask), strict=True))
        if not self.record:
            return {**known, **{i: r for i, r in fresh.items() if i not in known or r.destination}}
        self._store(stream, {i: r for i, r in fresh.items() if i not in known})
        self._route_unrouted(stream, {i: r for i, r in fresh.items() if i in known})
        return {**known, **self._read(stream, ask)}

    def _sql(self, text: str) -> str:
        """`text` with the driver's placeholders (plain driver SQL: this runs per chunk)."""
        return text if self.engine.dialect.name == "sqlite" else text.replace("?", "%s")

    def _read(self, stream: Stream, ids: list[int]) -> dict[int, Route]:
        """One range query (a chunk's ids are close together), kept to `ids`."""
        if not ids:
            return {}
        wanted = set(ids)
        query = self._sql(
            "SELECT row_id, destination, reason FROM outbound_route_decisions "
            "WHERE source = ? AND stream = ? AND row_id BETWEEN ? AND ?"
        )
        with self.engine.connect() as conn:
            found = conn.exec_driver_sql(query, (self.source, stream.value, min(ids), max(ids)))
            return {
                row_id: Route(destination, None if destination else reason)
                for row_id, destination, reason in found
                if row_id in wanted
            }

    def _store(self, stream: Stream, routes: Mapping[int, Route]) -> None:
        """Insert-if-absent: a concurrent reader's decision, stored first, wins."""
        if not routes:
            return
        now = time.time()
        rows = [
            (self.source, stream.value, i, r.destination, r.reason, now) for i, r in routes.items()
        ]
        statement = self._sql(
            "INSERT INTO outbound_route_decisions "
            "(source, stream, row_id, destination, reason, decided_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        with self.engine.begin() as conn:
            conn.exec_driver_sql(statement, rows)

    def _route_unrouted(self, stream: Stream, routes: Mapping[int, Route]) -> None:
        """A row stored as routed nowhere that now has a destination takes it, once."""
        with self.engine.begin() as conn:
            for i, r in routes.items():
                if r.destination is None:
                    continue
                conn.execute(
                    decisions.update()
                    .where(
                        decisions.c.source == self.source,
                        decisions.c.stream == stream.value,
                        decisions.c.row_id == i,
                        decisions.c.destination.is_(None),
                    )
                    .values(destination=r.destination, reason=None, decided_at=time.time())
                )
