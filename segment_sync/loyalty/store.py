"""The loyalty store: append-only loyalty events and profile changes, on SQLite or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import sqlalchemy as sa

from segment_sync.db import Url, create_engine, create_tables
from segment_sync.loyalty import customers, stored_rows
from segment_sync.loyalty.arrow_reader import ArrowReader
from segment_sync.loyalty.customers import IDS_PER_QUERY
from segment_sync.loyalty.records import (
    ORIGIN_SEGMENT,
    BadRow,
    LoyaltyEvent,
    NewEvent,
    NewProfileChange,
    ProfileChange,
    Stream,
)
from segment_sync.loyalty.tables import loyalty_events, metadata, profile_changes

# max_id's gap-free scan stops here; a lower answer is still safe, only later.
CONTIGUOUS_SCAN = 200_000

_TABLES = {Stream.EVENTS: loyalty_events, Stream.PROFILES: profile_changes}


def parse_row(stream: Stream, row: Sequence) -> LoyaltyEvent | ProfileChange | BadRow:
    """One stored row, in column order, as its record, or as the BadRow saying what is wrong."""
    return stored_rows.record(_TABLES[stream], row)


def _time_bound(dialect: sa.Dialect) -> Callable[[datetime], object]:
    """`occurred_at` bounds as the driver compares them (SQLite: the stored text)."""
    process = loyalty_events.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)


class LoyaltyStore:
    """Read (and, for the demo and the Antavo stand-in, append) loyalty events and profile changes."""

    def __init__(self, url: Url, settle_s: float = 2.0) -> None:
        self.url = url  # a URL setting keeps its password masked wherever it is shown
        self.settle_s = settle_s  # PostgreSQL: how long max_id waits for open writers (see there)
        self.engine = create_engine(url, setting="loyalty_store.url")
        create_tables(self.engine, metadata)
        self._arrow = ArrowReader(self.engine, self._table_rows)
        self._mark = "?" if self.engine.dialect.name == "sqlite" else "%s"
        self._time_bound = _time_bound(self.engine.dialect)

    def close(self) -> None:
        self.engine.dispose()

    def newest_id(self, stream: Stream) -> int:
        """The highest committed row id of a stream (0 when empty)."""
        table = _TABLES[stream]
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))
            ).scalar_one()

    def row_count(self, stream: Stream) -> int:
        """How many committed rows a stream holds."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(_TABLES[stream])
            ).scalar_one()

    def platform_rows_between(self, stream: Stream, since: datetime, until: datetime) -> int:
        """How many rows of `stream` the platform itself committed (echoes from Segment left
        out) that occurred in [since, until)."""
        table = _TABLES[stream]
        query = sa.select(sa.func.count()).where(
            table.c.occurred_at >= since,
            table.c.occurred_at < until,
            table.c.origin != ORIGIN_SEGMENT,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def max_id(self, stream: Stream, floor: int = 0) -> int:
        """The highest id the sync may pass: every id at or below it is committed or never will be.

        The sensors' cheap question and the run's target. `floor` is an id already known to be
        safe (the watermark, the sensor's cursor).

        SQLite: the newest id. SQLite has one writer at a time, which holds the write lock from
        its first insert to its commit, so ids are handed out and become visible in order: no
        reader can see id N+1 while N is still uncommitted.

        PostgreSQL: ids come from a sequence when a row is inserted and become visible when its
        transaction commits, so id N+1 can be visible while N is not (a late commit). The
        newest id M is safe once every transaction that was running when M was read has ended:
        M and xmax of that statement's snapshot are read together, then this waits (up to
        `settle_s`) until `pg_snapshot_xmin` of a fresh snapshot reaches that xmax (xid8: no
        wraparound). Ids are allocated before the allocating transaction is seen, so any id
        below M was held by a transaction older than that xmax. While a writing transaction
        stays open longer, the answer is the end of the gap-free run of ids above `floor`: an id
        taken by a visible row is committed, and the first gap may be a transaction still open
        (or a rollback, passed on a later run once no older transaction is open). Not covered:
        an id taken with nextval() by a transaction that writes its row only much later; the
        store's inserts take the id and write the row in one statement.
        """
        if self.engine.dialect.name == "sqlite":
            return self.newest_id(stream)
        return self._settled_max_id(_TABLES[stream], floor)

    def _settled_max_id(self, table: sa.Table, floor: int) -> int:
        with self.engine.connect() as conn:
            newest, xmax, quiet = conn.execute(
                sa.text(
                    f"SELECT (SELECT coalesce(max(id), 0) FROM {table.name}), "
                    "pg_snapshot_xmax(s)::text, pg_snapshot_xmin(s) = pg_snapshot_xmax(s) "
                    "FROM pg_current_snapshot() AS s"
                )
            ).one()
            conn.rollback()
            deadline = time.monotonic() + self.settle_s
            while not quiet:
                quiet = conn.execute(
                    sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= CAST(:x AS xid8)"),
                    {"x": xmax},
                ).scalar_one()
                conn.rollback()
                if quiet or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            if quiet:
                return max(newest, floor)
            # Rows whose id is floor + their rank above floor: the gap-free run.
            return conn.execute(
                sa.text(
                    "SELECT coalesce(max(id), :floor) FROM ("
                    "  SELECT id, row_number() OVER (ORDER BY id) AS n FROM ("
                    f"    SELECT id FROM {table.name} WHERE id > :floor ORDER BY id LIMIT :scan"
                    "  ) AS a"
                    ") AS b WHERE id = :floor + n"
                ),
                {"floor": floor, "scan": CONTIGUOUS_SCAN},
            ).scalar_one()

    def events_after(self, after_id: int, upto_id: int, limit: int) -> list[LoyaltyEvent | BadRow]:
        """Loyalty events with after_id < id <= upto_id, oldest first, at most `limit`."""
        return self.rows_after(Stream.EVENTS, after_id, upto_id, limit)

    def profile_changes_after(
        self, after_id: int, upto_id: int, limit: int
    ) -> list[ProfileChange | BadRow]:
        """Profile changes with after_id < id <= upto_id, oldest first, at most `limit`."""
        return self.rows_after(Stream.PROFILES, after_id, upto_id, limit)

    def rows_after(
        self, stream: Stream, after_id: int, upto_id: int, limit: int
    ) -> list[LoyaltyEvent | BadRow] | list[ProfileChange | BadRow]:
        table = _TABLES[stream]
        return stored_rows.records(table, self._rows(table, after_id, upto_id, limit))

    def arrow_after(
        self, stream: Stream, after_id: int, upto_id: int, limit: int
    ) -> pa.Table | None:
        """`rows_after` as one Arrow table of the stored text; None: a row needs `rows_after`."""
        return self._arrow.read(_TABLES[stream].name, after_id, upto_id, limit)

    def events_between(self, since: datetime, until: datetime) -> list[LoyaltyEvent | BadRow]:
        """Loyalty events that occurred in [since, until) (reconciliation)."""
        return self.rows_between(Stream.EVENTS, since, until)

    def profile_changes_between(
        self, since: datetime, until: datetime
    ) -> list[ProfileChange | BadRow]:
        """Profile changes that occurred in [since, until) (reconciliation)."""
        return self.rows_between(Stream.PROFILES, since, until)

    def rows_by_ids(
        self, stream: Stream, ids: Sequence[int]
    ) -> list[LoyaltyEvent | BadRow] | list[ProfileChange | BadRow]:
        """The rows of `stream` with these ids, oldest first; ids not in the store are left out."""
        table = _TABLES[stream]
        wanted = sorted(set(ids))
        rows: list = []
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            marks = ", ".join([self._mark] * len(chunk))
            rows += self._select(table, f"id IN ({marks})", chunk)
        return stored_rows.records(table, rows)

    def customers_by_external_id(self, external_ids: Collection[str]) -> dict[str, str]:
        """The customer ID of each external customer ID the store has seen (its newest pairing);
        IDs it has never seen are left out (customers.py)."""
        return customers.customers_by_external_id(self.engine, external_ids)

    def attribute_history(
        self,
        customer_ids: Collection[str] | None,
        attribute: str,
        *,
        after_id: int = 0,
        upto_id: int | None = None,
    ) -> dict[str, list[tuple[datetime, int, object]]]:
        """Each customer's values of one profile attribute, oldest first (customers.py)."""
        return customers.attribute_history(
            self.engine, self._mark, customer_ids, attribute, after_id=after_id, upto_id=upto_id
        )

    def rows_between(
        self,
        stream: Stream,
        since: datetime,
        until: datetime,
        *,
        after_id: int = 0,
        upto_id: int | None = None,
        limit: int | None = None,
    ) -> list[LoyaltyEvent | BadRow] | list[ProfileChange | BadRow]:
        """Rows of `stream` that occurred in [since, until) with after_id < id (<= upto_id),
        oldest id first, at most `limit` (page on with the last id as `after_id`)."""
        table, mark = _TABLES[stream], self._mark
        where = f"occurred_at >= {mark} AND occurred_at < {mark} AND id > {mark}"
        params: list = [self._time_bound(since), self._time_bound(until), after_id]
        if upto_id is not None:
            where += f" AND id <= {mark}"
            params.append(upto_id)
        return stored_rows.records(table, self._select(table, where, params, limit))

    def _table_rows(self, name: str, after_id: int, upto_id: int, limit: int) -> list[tuple]:
        """`_rows` for the Arrow reader (SQLite only): text as bytes (see ArrowReader)."""
        return self._rows(metadata.tables[name], after_id, upto_id, limit, text_as_bytes=True)

    def _rows(
        self, table: sa.Table, after_id: int, upto_id: int, limit: int, text_as_bytes: bool = False
    ) -> list[tuple]:
        mark = self._mark
        where, params = f"id > {mark} AND id <= {mark}", [after_id, upto_id]
        return self._select(table, where, params, limit, text_as_bytes=text_as_bytes)

    def _select(
        self,
        table: sa.Table,
        where: str,
        params: list,
        limit: int | None = None,
        text_as_bytes: bool = False,
    ) -> list[tuple]:
        """Every read of the two tables: their columns in order, oldest id first."""
        columns = ", ".join(c.name for c in table.columns)
        sql = f"SELECT {columns} FROM {table.name} WHERE {where} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {self._mark}"
            params = [*params, limit]
        return stored_rows.fetch(self.engine, sql, params, text_as_bytes=text_as_bytes)

    def append_events(self, events: Sequence[NewEvent]) -> list[int]:
        """Append events in one transaction; returns their ids in order."""
        now = datetime.now(UTC)
        rows = [
            {
                "customer_id": e.customer_id,
                "external_customer_id": e.external_customer_id,
                "action": e.action,
                "data": orjson.dumps(e.data).decode(),
                "occurred_at": e.occurred_at or now,
                "origin": e.origin,
            }
            for e in events
        ]
        return self._append(loyalty_events, rows)

    def append_profile_changes(self, changes: Sequence[NewProfileChange]) -> list[int]:
        """Append profile changes in one transaction; returns their ids in order."""
        now = datetime.now(UTC)
        rows = [
            {
                "customer_id": c.customer_id,
                "external_customer_id": c.external_customer_id,
                "attributes": orjson.dumps(c.attributes).decode(),
                "occurred_at": c.occurred_at or now,
                "origin": c.origin,
            }
            for c in changes
        ]
        return self._append(profile_changes, rows)

    def _append(self, table: sa.Table, rows: list[dict]) -> list[int]:
        if not rows:
            return []
        with self.engine.begin() as conn:
            result = conn.execute(
                table.insert().returning(table.c.id, sort_by_parameter_order=True), rows
            )
            return [r[0] for r in result]
