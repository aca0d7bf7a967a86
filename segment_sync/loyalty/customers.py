"""What the loyalty store knows of customers: external ID pairings and attribute histories."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from segment_sync.loyalty import stored_rows
from segment_sync.loyalty.stored_time import time_or_none
from segment_sync.loyalty.tables import loyalty_events, profile_changes

IDS_PER_QUERY = 1000  # bound parameters per IN list (SQLite allows 32766)
_NEVER = datetime.min.replace(tzinfo=UTC)  # a pairing whose time does not read: the oldest


def customers_by_external_id(engine: sa.Engine, external_ids: Collection[str]) -> dict[str, str]:
    """The customer ID of each external customer ID the store has seen (its newest pairing);
    IDs it has never seen are left out.

    Stores created before this lookup have no index on `external_customer_id`: the lookup
    still works, as a table scan per chunk of inbound events.
    """
    wanted = sorted(set(external_ids))
    newest: dict[str, tuple[datetime, str]] = {}
    if wanted:
        for table in (loyalty_events, profile_changes):
            for start in range(0, len(wanted), IDS_PER_QUERY):
                chunk = wanted[start : start + IDS_PER_QUERY]
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
                for external, customer, when in _fetch(engine, query):
                    external, customer = _text(external), _text(customer)
                    if external is None or customer is None:
                        continue
                    seen = time_or_none(when) or _NEVER
                    if external not in newest or seen > newest[external][0]:
                        newest[external] = (seen, customer)
    return {external: customer for external, (_, customer) in newest.items()}


def _fetch(engine: sa.Engine, query: sa.Select) -> list[tuple]:
    """`query`'s rows through stored_rows.fetch, so no stored value stops the read (SQLAlchemy's
    own time parsing raised for the whole read on a time that is not one)."""
    compiled = query.compile(engine, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    if compiled.positional:
        return stored_rows.fetch(engine, str(compiled), [params[k] for k in compiled.positiontup])
    return stored_rows.fetch(engine, str(compiled), params)  # type: ignore[arg-type]


def attribute_history(
    engine: sa.Engine,
    mark: str,
    customer_ids: Collection[str] | None,
    attribute: str,
    *,
    after_id: int = 0,
    upto_id: int | None = None,
) -> dict[str, list[tuple[datetime, int, object]]]:
    """Each customer's values of one profile attribute: (occurred_at, profile change id,
    value) of the profile changes with after_id < id (<= upto_id) that carry it, oldest
    first (occurred_at, then id). `customer_ids` None: every customer's.

    There is no customer table: the store knows a customer's attributes from their profile
    changes. A change whose attributes or time do not read carries no value.
    """
    # A cheap text filter first (a plain ASCII name is stored as itself); the JSON decides.
    plain = attribute.isascii() and attribute.isprintable() and not set(attribute) & {'"', "\\"}
    needle = f'%"{attribute}"%' if plain else "%"
    where = f"id > {mark} AND attributes LIKE {mark}"
    params: list = [after_id, needle]
    if upto_id is not None:
        where += f" AND id <= {mark}"
        params.append(upto_id)
    if customer_ids is None:
        batches: list[list[str]] = [[]]
    else:
        wanted = sorted({c for c in customer_ids if c})
        batches = [wanted[i : i + IDS_PER_QUERY] for i in range(0, len(wanted), IDS_PER_QUERY)]
    history: dict[str, list[tuple[datetime, int, object]]] = {}
    for batch in batches:
        sql = f"SELECT customer_id, id, occurred_at, attributes FROM profile_changes WHERE {where}"
        if customer_ids is not None:
            sql += f" AND customer_id IN ({', '.join([mark] * len(batch))})"
        for customer, row_id, when, text in stored_rows.fetch(engine, sql, [*params, *batch]):
            # One row not UTF-8 makes SQLite's read hand back every row's text as bytes.
            customer, attributes, at = _text(customer), _json(text), time_or_none(when)
            if customer is None or at is None:
                continue
            if isinstance(attributes, dict) and attribute in attributes:
                history.setdefault(customer, []).append((at, row_id, attributes[attribute]))
    for values in history.values():
        values.sort(key=lambda h: (h[0], h[1]))
    return history


def _text(value: object) -> str | None:
    """A text column as str (bytes when SQLite fell back, see stored_rows.fetch); None if not."""
    if value.__class__ is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if value.__class__ is str else None


def _json(value: object) -> object:
    """A JSON column's value; None when it is not text that parses."""
    text = _text(value)
    try:
        return None if text is None else orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
