"""The loyalty store: append-only loyalty events and profile changes, on SQLite or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import sqlalchemy as sa

from segment_sync.db import Url, create_engine, create_tables
from segment_sync.loyalty.arrow_reader import ArrowReader
from segment_sync.loyalty.records import (
    BadRow,
    LoyaltyEvent,
    NewEvent,
    NewProfileChange,
    ProfileChange,
    Stream,
)

metadata = sa.MetaData()

loyalty_events = sa.Table(
    "loyalty_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("external_customer_id", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, server_default="loyalty"),
    sa.Index("ix_loyalty_events_occurred_at", "occurred_at"),
    sa.Index("ix_loyalty_events_external_customer_id", "external_customer_id"),
)

profile_changes = sa.Table(
    "profile_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("external_customer_id", sa.Text),
    sa.Column("attributes", sa.Text, nullable=False, server_default="{}"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, server_default="loyalty"),
    sa.Index("ix_profile_changes_external_customer_id", "external_customer_id"),
)

# max_id's gap-free scan stops here; a lower answer is still safe, only later.
CONTIGUOUS_SCAN = 200_000

_TABLES = {Stream.EVENTS: loyalty_events, Stream.PROFILES: profile_changes}
_IDS_PER_QUERY = 1000  # bound parameters per IN list (SQLite allows 32766)


def _utc(value: datetime | str) -> datetime:
    """SQLite hands back naive text; the store only ever holds UTC."""
    if isinstance(value, str):
        # Appending the offset parses ~7x faster than .replace(tzinfo=UTC) afterwards.
        value = datetime.fromisoformat(value if len(value) > 26 else value + "+00:00")
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_loads = orjson.loads


def _object(text: str | bytes) -> dict:
    value = orjson.loads(text)
    if type(value) is not dict:
        raise TypeError(f"is JSON {type(value).__name__}, not an object")
    return value


def _event(row: Sequence) -> LoyaltyEvent:
    id_, customer_id, external_id, action, data, occurred_at, origin = row
    data = _loads(data)  # inline check, not _object(): this runs once per row on the hot path
    if data.__class__ is not dict:
        raise TypeError("data is not a JSON object")
    return LoyaltyEvent(id_, customer_id, external_id, action, data, _utc(occurred_at), origin)


def _profile_change(row: Sequence) -> ProfileChange:
    id_, customer_id, external_id, attributes, occurred_at, origin = row
    attributes = _loads(attributes)
    if attributes.__class__ is not dict:
        raise TypeError("attributes is not a JSON object")
    return ProfileChange(id_, customer_id, external_id, attributes, _utc(occurred_at), origin)


def _bad_row(table: sa.Table, row: Sequence) -> BadRow:
    """Which column of a row that did not parse is at fault, and how."""
    values = dict(zip((c.name for c in table.columns), row, strict=True))
    checks = {"data": _object, "attributes": _object, "occurred_at": _utc}
    for column, check in checks.items():
        if column not in values:
            continue
        try:
            check(values[column])
        except orjson.JSONDecodeError as exc:
            return BadRow(row[0], table.name, column, f"is not valid JSON ({exc})", row[1])
        except Exception as exc:
            return BadRow(row[0], table.name, column, f"cannot be read ({exc})", row[1])
    return BadRow(row[0], table.name, "(unknown)", "could not be read", row[1])


def _parsed(table: sa.Table, rows: Sequence[Sequence], parse: Callable) -> list:
    """Rows as records; a row that does not parse becomes a BadRow instead of stopping the read."""
    try:
        return [parse(row) for row in rows]  # the hot path: no per-row try
    except Exception:
        return [_parsed_one(table, row, parse) for row in rows]


def _parsed_one(table: sa.Table, row: Sequence, parse: Callable) -> object:
    try:
        return parse(row)
    except Exception:
        return _bad_row(table, row)


def parse_row(stream: Stream, row: Sequence) -> LoyaltyEvent | ProfileChange | BadRow:
    """One stored row, in column order, as its record, or as the BadRow saying what is wrong."""
    if stream is Stream.EVENTS:
        return _parsed_one(loyalty_events, row, _event)
    return _parsed_one(profile_changes, row, _profile_change)


class LoyaltyStore:
    """Read (and, for the demo and the Antavo stand-in, append) loyalty events and profile changes."""

    def __init__(self, url: Url, settle_s: float = 2.0) -> None:
        self.url = url  # a URL setting keeps its password masked wherever it is shown
        self.settle_s = settle_s  # PostgreSQL: how long max_id waits for open writers (see there)
        self.engine = create_engine(url)
        create_tables(self.engine, metadata)
        self._arrow = ArrowReader(self.engine, self._table_rows)

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
        rows = self._rows(loyalty_events, after_id, upto_id, limit)
        return _parsed(loyalty_events, rows, _event)

    def profile_changes_after(
        self, after_id: int, upto_id: int, limit: int
    ) -> list[ProfileChange | BadRow]:
        """Profile changes with after_id < id <= upto_id, oldest first, at most `limit`."""
        rows = self._rows(profile_changes, after_id, upto_id, limit)
        return _parsed(profile_changes, rows, _profile_change)

    def rows_after(
        self, stream: Stream, after_id: int, upto_id: int, limit: int
    ) -> list[LoyaltyEvent | BadRow] | list[ProfileChange | BadRow]:
        if stream is Stream.EVENTS:
            return self.events_after(after_id, upto_id, limit)
        return self.profile_changes_after(after_id, upto_id, limit)

    def arrow_after(
        self, stream: Stream, after_id: int, upto_id: int, limit: int
    ) -> pa.Table | None:
        """`rows_after` as one Arrow table of the stored text; None: a row needs `rows_after`."""
        return self._arrow.read(_TABLES[stream].name, after_id, upto_id, limit)

    def events_between(self, since: datetime, until: datetime) -> list[LoyaltyEvent | BadRow]:
        """Loyalty events that occurred in [since, until) (reconciliation)."""
        return _parsed(loyalty_events, self._between(loyalty_events, since, until), _event)

    def profile_changes_between(
        self, since: datetime, until: datetime
    ) -> list[ProfileChange | BadRow]:
        """Profile changes that occurred in [since, until) (reconciliation)."""
        rows = self._between(profile_changes, since, until)
        return _parsed(profile_changes, rows, _profile_change)

    def _between(self, table: sa.Table, since: datetime, until: datetime) -> list[tuple]:
        query = (
            sa.select(table)
            .where(table.c.occurred_at >= since, table.c.occurred_at < until)
            .order_by(table.c.id)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def rows_by_ids(
        self, stream: Stream, ids: Sequence[int]
    ) -> list[LoyaltyEvent] | list[ProfileChange]:
        """The rows of `stream` with these ids, oldest first; ids not in the store are left out."""
        table = _TABLES[stream]
        parse = _event if stream is Stream.EVENTS else _profile_change
        wanted = sorted(set(ids))
        rows: list = []
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                query = sa.select(table).where(table.c.id.in_(chunk)).order_by(table.c.id)
                rows.extend(parse(tuple(r)) for r in conn.execute(query))
        return rows

    def customers_by_external_id(self, external_ids: Collection[str]) -> dict[str, str]:
        """The customer ID of each external customer ID the store has seen (its newest pairing);
        IDs it has never seen are left out.

        Stores created before this lookup have no index on `external_customer_id`: the lookup
        still works, as a table scan per chunk of inbound events.
        """
        wanted = sorted(set(external_ids))
        newest: dict[str, tuple[datetime, str]] = {}
        with self.engine.connect() as conn:
            for table in (loyalty_events, profile_changes):
                for start in range(0, len(wanted), _IDS_PER_QUERY):
                    chunk = wanted[start : start + _IDS_PER_QUERY]
                    rank = (
                        sa.func.row_number()
                        .over(
                            partition_by=table.c.external_customer_id,
                            order_by=(table.c.occurred_at.desc(), table.c.id.desc()),
                        )
                        .label("n")
                    )
                    ranked = (
                        sa.select(
                            table.c.external_customer_id, table.c.customer_id,
                            table.c.occurred_at, rank,
                        )
                        .where(table.c.external_customer_id.in_(chunk))
                        .subquery()
                    )  # fmt: skip
                    query = sa.select(
                        ranked.c.external_customer_id, ranked.c.customer_id, ranked.c.occurred_at
                    ).where(ranked.c.n == 1)
                    for external, customer, when in conn.execute(query):
                        seen = _utc(when)
                        if external not in newest or seen > newest[external][0]:
                            newest[external] = (seen, customer)
        return {external: customer for external, (_, customer) in newest.items()}

    def rows_between(
        self,
        stream: Stream,
        since: datetime,
        until: datetime,
        *,
        after_id: int = 0,
        upto_id: int | None = None,
        limit: int | None = None,
    ) -> list[LoyaltyEvent] | list[ProfileChange]:
        """Rows of `stream` that occurred in [since, until) with after_id < id (<= upto_id),
        oldest id first, at most `limit` (page on with the last id as `after_id`)."""
        table = _TABLES[stream]
        parse = _event if stream is Stream.EVENTS else _profile_change
        query = sa.select(table).where(
            table.c.occurred_at >= since, table.c.occurred_at < until, table.c.id > after_id
        )
        if upto_id is not None:
            query = query.where(table.c.id <= upto_id)
        query = query.order_by(table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [parse(tuple(r)) for r in conn.execute(query)]

    def _table_rows(self, name: str, after_id: int, upto_id: int, limit: int) -> list[tuple]:
        return self._rows(metadata.tables[name], after_id, upto_id, limit)

    def _rows(self, table: sa.Table, after_id: int, upto_id: int, limit: int) -> list[tuple]:
        # The DB-API cursor directly: SQLAlchemy's row wrapping costs ~1 us a row on the hot loop.
        columns = ", ".join(c.name for c in table.columns)
        mark = "?" if self.engine.dialect.name == "sqlite" else "%s"
        sql = (
            f"SELECT {columns} FROM {table.name} WHERE id > {mark} AND id <= {mark} "
            f"ORDER BY id LIMIT {mark}"
        )
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, (after_id, upto_id, limit))
            rows = cursor.fetchall()
            cursor.close()
            connection.commit()  # ends the read transaction (PostgreSQL would hold a snapshot)
            return rows
        finally:
            connection.close()

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
