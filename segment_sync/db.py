"""SQLAlchemy engines for the embedded SQLite default and production PostgreSQL."""

from __future__ import annotations

import hashlib
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


def database_identity(url: str) -> str:
    """Which database a URL names, never its password: the SQLite file's real path, or
    `postgresql://user@host:port/dbname` (the same server and database however the URL is written)."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite://{path.expanduser().resolve()}"
    parsed = sa.engine.make_url(sqlalchemy_url(url))
    user = f"{parsed.username}@" if parsed.username else ""
    host = (parsed.host or "localhost").lower()
    return f"postgresql://{user}{host}:{parsed.port or 5432}/{parsed.database or ''}"


def fingerprint(secret: str) -> str:
    """A short stable stand-in for a secret (first 16 hex of its SHA-256); not reversible."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def resolve_sqlite_url(url: str, base: Path) -> str:
    """A relative `sqlite:///path` made absolute against `base`; other URLs unchanged."""
    path = sqlite_path(url)
    if path is None or str(path) == ":memory:" or path.is_absolute():
        return url
    return f"sqlite:///{(base / path.expanduser()).resolve()}"


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


def create_tables(engine: Engine, metadata: sa.MetaData) -> None:
    """Create the missing tables; tolerates another process creating them at the same moment.

    Two first runs on a fresh PostgreSQL database race in CREATE TABLE (a unique violation on
    pg_type); the loser only needs the tables to exist.
    """
    try:
        metadata.create_all(engine)
    except sa.exc.DBAPIError:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not all(inspector.has_table(table.name) for table in metadata.sorted_tables):
                raise
