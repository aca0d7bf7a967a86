"""What a settings value may be, and how a refused one is described without showing a secret.

Environment variable NAMES (a pasted secret is refused, never echoed), URL settings (SecretUrl:
their passwords masked wherever they are shown), the `(got ...)` of a validation error, and a
YAML syntax error's place and problem (never the offending line's text).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import BeforeValidator

from segment_sync.db_urls import server_url_problem
from segment_sync.redaction import SecretUrl, redact_url

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ENV_NAME_MAX = 64
# A part of a name between underscores this long is a pasted key (32 letters and digits), not
# a word: SEGMENT_WRITE_KEY's longest part has 7.
_ENV_WORD_MAX = 19
ENV_NAME_RULE = (
    f"UPPER_SNAKE_CASE: A-Z, 0-9 and '_', not starting with a digit, at most {_ENV_NAME_MAX} "
    f"characters, at most {_ENV_WORD_MAX} between two '_'; e.g. SEGMENT_WRITE_KEY"
)
_DB_URL = re.compile(r"^(sqlite:///.+|postgres(ql)?://.+)$")
# Quoted text in a YAML error (a tag, an anchor, a character) may be part of a secret.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_YAML_TOKEN = re.compile(r"'<[a-z ]+>'")  # PyYAML's token names: '<stream end>', '<scalar>'


def env_name(value: str) -> str:
    """An env var NAME; a value that looks like the secret itself is refused (and never echoed)."""
    looks_like_a_name = (
        _ENV_NAME.match(value)
        and len(value) <= _ENV_NAME_MAX
        and all(len(word) <= _ENV_WORD_MAX for word in value.split("_"))
    )
    if not looks_like_a_name:
        raise ValueError(
            "this looks like the secret itself, not the NAME of an environment variable (the "
            "value is not shown): put the secret in an environment variable and write its name "
            f"here. A name is {ENV_NAME_RULE}"
        )
    return value


def optional_env_name(value: str | None) -> str | None:
    return None if value is None else env_name(value)


def _url_text(value: Any) -> Any:
    """A URL setting's text (a SecretUrl given in code is read as its URL)."""
    return value.reveal() if isinstance(value, SecretUrl) else value


def _db_url(value: Any) -> Any:
    value = _url_text(value)
    if not isinstance(value, str):
        return value
    if not _DB_URL.match(value):
        raise ValueError("must be a database URL: sqlite:///path/to/file.db or postgresql://...")
    # A server URL is read as the engine will (SQLAlchemy's make_url): a port or an IPv6 host
    # it cannot read is found here, not as a traceback when the first run opens it.
    problem = server_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _base_url(value: Any) -> Any:
    value = _url_text(value)
    if not isinstance(value, str):
        return value
    problem = "must be an http(s) URL such as http://127.0.0.1:8701, or null"
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(problem)
    unreadable = url_problem(value)
    if unreadable is not None:
        raise ValueError(f"{problem}; {unreadable}")
    return value.rstrip("/")


def url_problem(url: str) -> str | None:
    """Why urllib, httpx or redis-py would read `url` otherwise than the masking of its password
    does (a '/', '?' or '#' before its '@'), or not read it at all (its port); None when they
    read it as meant. Never quotes the URL: what a parser would take for its host or port may be
    a piece of the password."""
    try:
        ambiguous = _password_is_ambiguous(url)
    except ValueError:  # urllib: "Invalid IPv6 URL"
        return (
            "its host cannot be read (a '[' or ']' outside an IPv6 address): percent-encode "
            "them in a password (%5B, %5D)"
        )
    if ambiguous:
        return (
            "it has an '@' after its host: percent-encode '/', '?' and '#' in a password (%2F, "
            "%3F, %23), and '@' in a path (%40)"
        )
    try:
        port = urlsplit(url).port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        port = 0
    return "its port must be a number from 1 to 65535" if port == 0 else None


def _password_is_ambiguous(url: str) -> bool:
    """Would httpx read another password than the one masked (a '/', '?' or '#' before '@')?"""
    masked = SecretUrl(url).passwords()[:1]
    password = urlsplit(url).password
    return masked != ([password] if password else [])


# Every URL setting is one of these: shown anywhere, its password is masked (redaction.py).
DatabaseUrl = Annotated[SecretUrl, BeforeValidator(_db_url)]
HttpUrl = Annotated[SecretUrl, BeforeValidator(_base_url)]


# `scheme://name:text` where the text is no port and no '@' follows: a user and password whose
# host was left out (read as host and port, nothing is masked).
_LOOKS_LIKE_USER_PASSWORD = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:(?![0-9]*(?:[/?#]|$))[^@]*$"
)


def shown_value(loc: tuple[Any, ...], got: Any) -> str:
    """` (got ...)` for a refused value, unless it may be a secret: what was written where an
    env var NAME belongs, or text with an '@' that is no URL whose password can be masked."""
    if (loc and str(loc[-1]).endswith("_env")) or isinstance(got, dict | list) or got is None:
        return ""
    if isinstance(got, str) and "://" in got:  # a query string may hold a key: never shown
        if _LOOKS_LIKE_USER_PASSWORD.search(got):
            return ""  # `postgresql://user:Secret` without '@host': no password to mask
        # Masked before the query is cut: a '?' in the password would cut it first, and the
        # password's start would show as the URL's end.
        return f" (got {redact_url(got).split('?', 1)[0]!r})"
    if isinstance(got, str) and "@" in got:
        return ""
    return f" (got {got!r})"


def yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, never the text: PyYAML quotes the offending line, which may hold a URL
    with its password, and names tags and anchors as written."""
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f" at character {exc.position + 1}: a control character (#x{exc.character:04x}) is "
            "not allowed; remove it"
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "; fix its syntax"
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = _QUOTED.sub(_short_only, exc.problem or exc.context or "a syntax error")
    started = ""
    if exc.context and exc.context_mark and exc.context_mark is not mark:
        context = _QUOTED.sub(_short_only, exc.context)
        started = f" ({context} at line {exc.context_mark.line + 1}, column "
        started += f"{exc.context_mark.column + 1})"
    hidden = "the line is not shown: it may hold a secret"
    return f"{where}: {what}{started}; fix the syntax there ({hidden})"


def _short_only(quoted: re.Match[str]) -> str:
    """A quoted character ('\\t') or token name ('<scalar>') stays; other text becomes '…'."""
    return quoted[0] if len(quoted[0]) <= 4 or _YAML_TOKEN.fullmatch(quoted[0]) else "'…'"
