"""Progress kept under a destination key that held the endpoint's password moves to the key
without it, so upgrading keeps every stream's place (and the password leaves the database).

Versions before issue 24 keyed progress by the endpoint as written, `http://u:pw@host key:...`;
the key is now `http://u@host key:...`. A key that never held a password is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa


def adopt_legacy_rows(
    engine: sa.Engine,
    source: str,
    destination: str,
    legacy_destination: str,
    progress: sa.Table,
    sharding: sa.Table,
) -> int:
    """Re-key this source's rows from `legacy_destination` to `destination`; how many moved.

    Where both keys hold a watermark (an older process ran on after an upgrade), each says
    every row up to it was handled, so the higher one stays. The newer shard count stays.
    """
    moved = 0
    with engine.begin() as conn:
        for table in (progress, sharding):
            legacy_rows = conn.execute(
                sa.select(table).where(
                    table.c.source == source, table.c.destination == legacy_destination
                )
            ).mappings()
            for row in list(legacy_rows):
                current = sa.and_(
                    table.c.source == source,
                    table.c.destination == destination,
                    table.c.stream == row["stream"],
                )
                legacy = sa.and_(
                    table.c.source == source,
                    table.c.destination == legacy_destination,
                    table.c.stream == row["stream"],
                )
                existing = conn.execute(sa.select(table).where(current)).mappings().first()
                if existing is None:
                    conn.execute(table.update().where(legacy).values(destination=destination))
                else:
                    if table is progress and row["delivered_upto"] > existing["delivered_upto"]:
                        conn.execute(
                            table.update()
                            .where(current)
                            .values(delivered_upto=row["delivered_upto"], run_id=row["run_id"])
                        )
                    conn.execute(table.delete().where(legacy))
                moved += 1
    return moved
