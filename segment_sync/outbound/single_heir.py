"""Which routed destination continues the single destination's progress (and log rows).

Log rows of a single destination have `destination` NULL. After switching to several
destinations, the one whose progress key equals the old single destination's (same store,
endpoint and write key) continues its progress, so those NULL rows are its deliveries too
(reconciliation must not resend them). The single destination's key is noted each time its
progress is opened; a deployment switching without such a note (an older version) takes, at
its first routed use, the only destination key that already has progress, if exactly one has.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from segment_sync.db import create_tables
from segment_sync.outbound.state import OutboundState, progress

metadata = sa.MetaData()

singles = sa.Table(
    "outbound_single_destination",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("destination", sa.Text, nullable=False),  # "": none (routed from the start)
)


def note(state: OutboundState, *, single: bool) -> None:
    """Note the single destination's key; with routing, take the one found, if not noted yet."""
    create_tables(state.engine, metadata)
    source = state.key.source
    with state.engine.begin() as conn:
        noted = conn.execute(
            sa.select(singles.c.destination).where(singles.c.source == source)
        ).scalar()
        insert = (postgresql if state.engine.dialect.name == "postgresql" else sqlite).insert
        if single and noted != state.key.destination:
            key = state.key.destination
            statement = insert(singles).values(source=source, destination=key)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[singles.c.source], set_={"destination": key}
                )
            )
        elif not single and noted is None:
            keys = conn.execute(
                sa.select(progress.c.destination).where(progress.c.source == source).distinct()
            ).scalars()
            found = list(keys)
            heir = found[0] if len(found) == 1 else ""
            if len(found) <= 1:  # several: which was the single one is unknown; note nothing
                statement = insert(singles).values(source=source, destination=heir)
                conn.execute(statement.on_conflict_do_nothing())


def continues_single(state: OutboundState) -> bool:
    """Does this (routed) destination continue the single destination's progress?"""
    create_tables(state.engine, metadata)
    query = sa.select(singles.c.destination).where(singles.c.source == state.key.source)
    with state.engine.connect() as conn:
        return conn.execute(query).scalar() == state.key.destination
