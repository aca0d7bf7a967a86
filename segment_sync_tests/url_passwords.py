"""Generated URL passwords for the secret tests, and where to look for them afterwards.

A password is `PWa<digits><middle>PWz<digits>`: the middle holds what breaks naive masking
('@', ':', %-escapes, unicode, and for database URLs '/', '?', '#' and spaces), and the two
markers at its ends catch any fragment of it that leaks on either side of a split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
import sqlalchemy as sa
from hypothesis import strategies as st

# What users paste into a password, unescaped; %-escapes come on top (below).
_COMMON = "@:!$&'()*+,;=~-._%"
_HTTP_SAFE = st.sampled_from(list(_COMMON)) | st.characters(categories=["L", "N"])
_DB_ONLY = st.sampled_from(list("/?# "))  # a database URL may carry these raw; http may not
_ESCAPE = st.sampled_from(["%40", "%3A", "%2F", "%25", "%C3%A9", "%20"])


@dataclass(frozen=True)
class Password:
    """One generated password: what goes in the URL, and the markers that must never show."""

    written: str
    head: str
    tail: str

    def leaks_in(self, text: str) -> bool:
        """Does `text` hold the password, decoded or not, or either end of it?"""
        forms = {self.written, unquote(self.written), self.head, self.tail}
        return any(form in text for form in forms)


def passwords(*, for_http: bool) -> st.SearchStrategy[Password]:
    """Passwords as users write them; http ones keep '/', '?' and '#' %-encoded (RFC 3986)."""
    piece = st.one_of(_HTTP_SAFE, _ESCAPE) if for_http else st.one_of(_HTTP_SAFE, _ESCAPE, _DB_ONLY)
    middle = st.lists(piece, min_size=1, max_size=12).map("".join)
    marker = st.integers(100_000, 999_999)
    return st.builds(
        lambda a, m, z: Password(f"PWa{a}{m}PWz{z}", f"PWa{a}", f"PWz{z}"), marker, middle, marker
    )


def with_password(url: str, user: str, password: Password) -> str:
    """`url` (scheme://host...) with `user:password@` in front of its host."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(user)}:{password.written}@{rest}"


def leaked_rows(rows: Iterable[object], password: Password) -> list[str]:
    """The rows (as text) that hold the password or a fragment of it."""
    return [text for row in rows if password.leaks_in(text := repr(row))]


def log_rows(logs_dir: Path) -> list[tuple]:
    """Every row of every Parquet log file under `logs_dir` (all tables, all columns)."""
    rows: list[tuple] = []
    with duckdb.connect() as con:
        for file in sorted(logs_dir.rglob("*.parquet")):
            rows += con.execute("SELECT * FROM read_parquet(?)", [str(file)]).fetchall()
    return rows


def database_rows(sqlalchemy_url: str) -> list[tuple]:
    """Every row of every table in the database (the sync's state, buffer and store)."""
    engine = sa.create_engine(sqlalchemy_url)
    try:
        rows: list[tuple] = []
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                rows += [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]
        return rows
    finally:
        engine.dispose()
