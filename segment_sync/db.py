"""SQLAlchemy engines for the embedded SQLite default and production PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def sqlalchemy_url(url: str) -> str:
    """Map the settings' plain URLs (`postgresql://`, `sqlite:///`) to SQLAlchemy driver URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///path` URL, or None for other databases."""
    if not is_sqlite(url):
        return None
    return Path(url.split(":///", 1)[1])


def create_engine(url: str, *, durable: bool = False) -> Engine:
    """An engine tuned for many readers and one writer at a time (WAL, busy timeout) on SQLite.

    `durable=True` also survives power loss (synchronous=FULL), not only a killed process.
    """
    path = sqlite_path(url)
    if path is None:
        return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _tune(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine
