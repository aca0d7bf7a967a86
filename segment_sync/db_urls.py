"""Server (PostgreSQL) database URLs checked as SQLAlchemy and the driver will read them: a URL
they cannot use is one line naming the setting and the fix, never the password or query values."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from segment_sync.db import Url, is_sqlite, sqlalchemy_url
from segment_sync.redaction import REDACTED, Redactor, SecretUrl, redact_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

SERVER_URL_EXAMPLE = "postgresql://user@host:5432/dbname"
_LIBPQ_OPTIONS = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"
# psycopg.connect's own keywords: never part of the connection string the driver checks.
_PSYCOPG_KEYWORDS = frozenset(
    {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"}
)
_QUOTED_NAME = re.compile(r"\"([^\"]*)\"")
_OPTION_NAME = re.compile(r"[a-z][a-z_]{0,39}")  # libpq's keywords: sslmode, connect_timeout


class DatabaseUrlError(ValueError):
    """A database URL setting the driver cannot use because of its form: one line naming the
    setting, the problem and the fix, never the password or the query's values."""


def server_url_problem(url: Url) -> str | None:
    """Why SQLAlchemy's own parser (make_url, as the engine reads it) cannot take the host and
    port of a `postgresql://` URL, or why its port is none; None when it can, and for SQLite."""
    if is_sqlite(url):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        port = make_url(sqlalchemy_url(url)).port  # ValueError: int() of the text after ':'
    except (ValueError, ArgumentError):
        return (
            "SQLAlchemy cannot read the host and port of this database URL; fix: write the "
            "port as a number from 1 to 65535, an IPv6 host in brackets "
            "(postgresql://user@[::1]:5432/dbname), several hosts as ?host=h1:5432&host=h2:5432"
        )
    if port is not None and not 1 <= port <= 65535:
        return (
            "the port of this database URL is not a number from 1 to 65535; fix: write the "
            f"server's port, e.g. {SERVER_URL_EXAMPLE}"
        )
    return None


def shown_database_url(url: Url) -> str:
    """A database URL as an error may show it: password masked, query string left out (its
    values may be secrets, e.g. ?password=...)."""
    shown = redact_url(url)  # masked before the query is cut: a '?' in the password cuts first
    head, has_query, _query = shown.partition("?")
    return head + ("?…" if has_query else "")


def server_engine(url: Url, setting: str | None) -> Engine:
    """A PostgreSQL engine, its URL checked as the driver will read it before any connection:
    a URL it cannot use is a DatabaseUrlError, not the driver's traceback at the first query."""
    import sqlalchemy as sa

    problem = server_url_problem(url)
    if problem is None:
        try:
            engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True)
            problem = _driver_problem(engine)
        except (sa.exc.ArgumentError, ValueError) as exc:
            problem = f"SQLAlchemy cannot read it: {_first_line(exc)}"
        if problem is None:
            return engine
    raise DatabaseUrlError(_url_error(url, setting, problem))


def _driver_problem(engine: Engine) -> str | None:
    """What the driver would refuse in the engine's connection options (an option it does not
    know, a connect_timeout that is no number), found without connecting; None if nothing."""
    _args, params = engine.dialect.create_connect_args(engine.url)  # ArgumentError, ValueError
    if engine.dialect.driver != "psycopg":
        return None
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo, timeout_from_conninfo

    options = {k: v for k, v in params.items() if k not in _PSYCOPG_KEYWORDS}
    try:
        make_conninfo("", **options)  # libpq's own check of every option's name
        timeout_from_conninfo(options)
    except ProgrammingError as exc:
        return f"the driver refuses it: {_first_line(exc)}"
    return None


def _query_values(url: Url) -> list[str]:
    """The values of the URL's ?options as SQLAlchemy reads them (decoded), and as written."""
    from sqlalchemy.engine import make_url

    try:
        query = make_url(sqlalchemy_url(url)).query
    except Exception:  # a URL SQLAlchemy cannot read: its problem is told without the driver
        return []
    values = [v for value in query.values() for v in ([value] if isinstance(value, str) else value)]
    return [*values, *(quote_plus(v) for v in values), *(quote(v, safe="") for v in values)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _url_error(url: Url, setting: str | None, problem: str) -> str:
    """One line: the setting, the URL as it may be shown, the problem and the fix. Quoted text
    that is not an option's name is left out (it may be a value from the query); the URL's
    password and query values are masked wherever they still appear."""

    def quoted(match: re.Match[str]) -> str:
        return match[0] if _OPTION_NAME.fullmatch(match[1]) else '"…"'

    problem = _QUOTED_NAME.sub(quoted, problem)
    secret = url if isinstance(url, SecretUrl) else SecretUrl(url)
    problem = (
        Redactor([*secret.passwords_and_pieces(), *_query_values(url)]).text(problem) or REDACTED
    )
    key = setting or "the database URL setting"
    return (
        f"{key}: cannot use {shown_database_url(url)}: {problem}; fix {key} in the settings "
        f"(e.g. {SERVER_URL_EXAMPLE}; connection options: {_LIBPQ_OPTIONS})"
    )
