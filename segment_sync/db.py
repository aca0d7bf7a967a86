"""SQLAlchemy engines for the embedded SQLite default and production PostgreSQL.

SQLAlchemy is imported where an engine is made or a URL parsed, not with this module: the
settings resolve SQLite paths with the plain-text helpers here, and `settings check` and
every `--help` start without it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from segment_sync.redaction import (
    SecretUrl,
    reveal,
    url_password_span,
)

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

# Every function here takes a URL setting (SecretUrl) or plain text; only the driver sees the
# password.
Url = str | SecretUrl


def sqlalchemy_url(url: Url) -> str:
    """Map the settings' plain URLs (`postgresql://`, `sqlite:///`) to SQLAlchemy driver URLs."""
    text = reveal(url)
    if text.startswith("postgresql://") or text.startswith("postgres://"):
        return "postgresql+psycopg://" + _password_encoded(text).split("://", 1)[1]
    return text


def _password_encoded(url: str) -> str:
    """`url` with its password %-encoded once, as the masking reads it (url_password_span).

    SQLAlchemy ends a password at its first '@' (and lets it hold '/'), so a pasted `p@ss`
    would leave `ss@host` as the host, which drivers quote in their errors. Encoded, the driver
    reads the password the settings mean, and what follows it holds none of it. A password
    with nothing to encode is left as written.
    """
    span = url_password_span(url)
    if span is None:
        return url
    start, end = span
    return url[:start] + quote(unquote(url[start:end]), safe="") + url[end:]


def is_sqlite(url: Url) -> bool:
    return reveal(url).startswith("sqlite:")


def sqlite_path(url: Url) -> Path | None:
    """The file behind a `sqlite:///path` URL, or None for other databases."""
    if not is_sqlite(url):
        return None
    return Path(reveal(url).split(":///", 1)[1])


def database_identity(url: Url) -> str:
    """Which database a URL names, never its password: the SQLite file's real path, or
    `postgresql://user@host:port/dbname` (the same server and database however the URL is written)."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite://{path.expanduser().resolve()}"
    import sqlalchemy as sa

    parsed = sa.engine.make_url(sqlalchemy_url(url))
    user = f"{parsed.username}@" if parsed.username else ""
    host = (parsed.host or "localhost").lower()
    return f"postgresql://{user}{host}:{parsed.port or 5432}/{parsed.database or ''}"


def fingerprint(secret: str) -> str:
    """A short stable stand-in for a secret (first 16 hex of its SHA-256); not reversible."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def resolve_sqlite_url(url: Url, base: Path) -> str:
    """A relative `sqlite:///path` made absolute against `base`; other URLs unchanged."""
    path = sqlite_path(url)
    if path is None or str(path) == ":memory:" or path.is_absolute():
        return reveal(url)
    return f"sqlite:///{(base / path.expanduser()).resolve()}"


SQLITE_FIX = (
    "point it at a file in a folder this process can write (missing folders are created), "
    "or at a postgresql:// URL"
)


SQLITE_HEADER = b"SQLite format 3\x00"


class DatabasePathError(ValueError):
    """A `sqlite:///` URL names a file that cannot be created or written."""


def sqlite_file_problem(url: str) -> str | None:
    """Why the file of a `sqlite:///` URL cannot be created or written, read from the disk as
    it is now (a file where a folder must be, a read-only or unwritable folder, a file that is
    not a database); None when it can be, or for any other database."""
    path = sqlite_path(url)
    if path is None or str(path) == ":memory:":
        return None
    path = path.expanduser()
    try:
        if path.is_dir():
            return f"{path} is a folder, not a database file"
        if path.exists():
            if not os.access(path, os.R_OK | os.W_OK):
                return f"{path} is not writable"
            with open(path, "rb") as file:
                header = file.read(len(SQLITE_HEADER))
            if header and header != SQLITE_HEADER:  # SQLite starts an empty file afresh
                return f"{path} is not a SQLite database file"
            return None
        existing = path.parent
        while not existing.exists():  # the nearest ancestor there is
            existing = existing.parent
        if not existing.is_dir():
            then = (
                f", so the folder {path.parent} cannot be created"
                if existing != path.parent
                else ""
            )
            return f"{existing} is a file, not a folder{then}"
        if not os.access(existing, os.W_OK | os.X_OK):
            why = "read-only" if _read_only(existing) else "not writable"
            return f"the folder {existing} is {why}, so {path} cannot be created there"
    except OSError as exc:
        return f"{path} cannot be reached: {exc.strerror or exc}"
    return None


def _read_only(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


BUSY_TIMEOUT_S = 30
CREATE_ATTEMPTS = 5


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode, waiting out a first connection that is switching it right now.

    On a new file SQLite answers "database is locked" at once, without its busy handler, while
    another process holds the lock to switch the mode; once the file is in WAL this is a no-op.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def create_engine(url: Url, *, durable: bool = False, setting: str | None = None) -> Engine:
    """An engine tuned for many readers and one writer at a time (WAL, busy timeout) on SQLite.

    `durable=True` also survives power loss (synchronous=FULL), not only a killed process.
    `setting` names the URL's key in the settings (`loyalty_store.url`) in a DatabaseUrlError.
    """
    import sqlalchemy as sa

    path = sqlite_path(url)
    if path is None:
        from segment_sync.db_urls import server_engine  # checks the URL as the driver reads it

        return server_engine(url, setting)
    problem = sqlite_file_problem(url)  # settings check it on load; the disk may change since
    if problem is not None:
        raise DatabasePathError(f"cannot use the SQLite database {path}: {problem}; {SQLITE_FIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(reveal(url), connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _tune(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        _switch_to_wal(cur)
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.close()

    return engine


def create_tables(engine: Engine, metadata: sa.MetaData) -> None:
    """Create the missing tables; tolerates other processes creating them at the same moment.

    Two first runs on a fresh database race table by table: the loser's CREATE TABLE fails
    ("already exists" on SQLite, a unique violation on PostgreSQL's pg_type) while the winner
    may not have created the next table yet. create_all skips what exists, so it is retried
    until it finds nothing left to create.
    """
    import sqlalchemy as sa

    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
