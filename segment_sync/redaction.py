"""Keep secrets (write keys, API keys, signatures, auth headers, URL passwords) out of logs and
errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from segment_sync.byte_search import contains

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()
SECRET_HEADERS = frozenset(
    {"authorization", "x-signature", "x-ems-auth", "x-antavo-auth", "cookie"}
)


# scheme://user:PASSWORD@host: greedy up to the last @ before the path, as a password may hold @.
# Quotes and commas end it too, so a URL inside a JSON body never swallows the next field.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"',]*:)([^\s/\"',]+)@")
# What every _URL_PASSWORD match holds, found from the "://" (no backtracking over a long word):
# text without it is clean, though it holds "://" and "@" apart (an e-mail beside a page URL).
_MAYBE_PASSWORD = re.compile(r"://[^\s/:@\"',]*:[^\s/\"',]+@")
_MAYBE_PASSWORD_BYTES = re.compile(_MAYBE_PASSWORD.pattern.encode())


def _json_escaped(secret: str) -> set[str]:
    """`secret` as JSON writers put it inside a string, where that differs: orjson and DuckDB
    (quote, backslash, control characters), Python's json.dumps (also non-ASCII as \\uXXXX)."""
    ascii_form = json.dumps(secret)[1:-1]
    forms = {ascii_form, json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms.add(
        re.sub(r"\\u[0-9a-f]{4}", lambda m: m.group(0).upper().replace("\\U", "\\u"), ascii_form)
    )
    forms |= {form.replace("/", "\\/") for form in (*forms, secret) if "/" in form}  # PHP: \/
    forms.discard(secret)
    return forms


def mask_url_passwords(text: str) -> str:
    """Every URL's password replaced, e.g. postgresql://u:[REDACTED]@host/db."""
    if "@" not in text or "://" not in text:  # "@" first: a fast one-character scan
        return text
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class Redactor:
    """Replaces every known secret value in text; knows nothing of where the text goes."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        self._raw: list[bytes] = []  # the same, encoded once (body, clean_bytes)
        self._add_all(secrets)

    def add(self, secret: str | None) -> None:
        self._add_all([secret])

    def _add_all(self, secrets: Iterable[str | None]) -> None:
        """Add each secret, sorted once (not per secret: thousands of them were quadratic)."""
        known = set(self._secrets)
        for secret in secrets:
            if secret and len(secret) >= 4 and secret not in known:
                # Each secret also as a JSON string holds it: a body or an error quoting data
                # carries `a\"b` for `a"b`.
                known |= {secret, *_json_escaped(secret)}
        if len(known) == len(self._secrets):
            return
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(known, key=lambda s: (-len(s), s))
        self._raw = [s.encode(errors="surrogatepass") for s in self._secrets]

    def text(self, value: str | None) -> str | None:
        """`value` with every known secret, and every URL password, replaced."""
        if value is None:
            return None
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return mask_url_passwords(value)

    def clean(self, value: str) -> bool:
        """Whether `text(value)` would change nothing: no known secret and no URL password can be
        in it. Also true of every part of `value`, so a clean whole spares redacting its parts."""
        if any(secret in value for secret in self._secrets):
            return False
        return "@" not in value or "://" not in value or not _MAYBE_PASSWORD.search(value)

    def clean_bytes(self, value: bytes) -> bool:
        """`clean` of UTF-8 text given as bytes (a log column's data buffer), without decoding."""
        if any(contains(value, raw) for raw in self._raw):
            return False
        return b"@" not in value or b"://" not in value or not _MAYBE_PASSWORD_BYTES.search(value)

    def body(self, value: bytes) -> bytes:
        """UTF-8 `value` redacted as `text` would, without decoding it: a request body is
        hundreds of KB and seldom holds a secret, so the clean case is a byte search per secret
        and returns `value` itself (UTF-8 is self-synchronising: a byte match is a text match)."""
        for raw in self._raw:
            if contains(value, raw):
                value = value.replace(raw, _REDACTED_BYTES)
        if b"@" not in value or b"://" not in value:  # "@": a memchr scan; "://" is slow on JSON
            return value
        return mask_url_passwords(value.decode()).encode()

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k: REDACTED if k.lower() in SECRET_HEADERS else (self.text(v) or "")
            for k, v in headers.items()
        }


# ---------------------------------------------------------------------------------------------
# URL settings: one rule for where a URL's password is, one way to show a URL
# ---------------------------------------------------------------------------------------------


def url_password_span(url: str) -> tuple[int, int] | None:
    """Where the password of `url` is (start, end), or None when it has none (or an empty one).

    The widest reading, so nothing of a password ever shows: from the first ':' after the user
    name to the last '@' (users paste '@', ':', '/' and '?' unescaped; SQLAlchemy would end it
    at the first '@', urllib at the last one before the path). A user name holding '/' is a
    path, not credentials (`sqlite:///a:b@c`).
    """
    scheme_end = url.find("://")
    if scheme_end <= 0:
        return None
    start = scheme_end + 3
    colon = url.find(":", start)
    if colon == -1 or "/" in url[start:colon]:
        return None
    at = url.rfind("@")
    if at <= colon + 1:
        return None
    return colon + 1, at


# Where a URL parser may cut a password written with them raw: urllib and httpx end the host at
# the first '/', '?' or '#' (then read the password's start as a port), SQLAlchemy ends the
# password at its first '@', a host:port split takes the last ':'.
URL_DELIMITERS = "?#/@:"
_DELIMITER = re.compile(f"([{re.escape(URL_DELIMITERS)}])")
# Runs of up to this many segments are pieces, besides every prefix and suffix: a parser's piece
# is a prefix, a suffix or one segment (a port, a host); the cap keeps a password of a hundred
# delimiters from registering thousands of secrets that every text is searched for.
_MAX_SEGMENTS_IN_A_PIECE = 8
# Longer "passwords" are not cut into pieces (each prefix and suffix would be a secret searched
# for in every text: a 10 KB value with 2,000 delimiters took `settings check` 45 s).
MAX_PIECED_PASSWORD = 256


def password_pieces(password: str) -> list[str]:
    """The pieces of `password` a parser cutting it at URL delimiters (`?`, `#`, `/`, `@`, `:`)
    may take for the password, a host or a port, and quote in an error: every run of whole
    segments between delimiters (its prefixes, its suffixes and the runs between), of 4
    characters or more (a Redactor masks nothing shorter). [] without a delimiter.

    Registered as secrets beside the whole password, they are masked wherever they show:
    `http://u:PW?rest@host` read by urllib is host `u`, port `PW` ("Port could not be cast to
    integer value as 'PW'")."""
    if len(password) > MAX_PIECED_PASSWORD:
        return []  # no password is this long: a pasted document, whose pieces would be many
    parts = _DELIMITER.split(password)
    if len(parts) == 1:
        return []
    count = len(parts) // 2 + 1  # segments; parts alternate segment, delimiter, segment...
    runs = [
        (i, j)
        for i in range(count)
        for j in range(i, count)
        if i == 0 or j == count - 1 or j - i < _MAX_SEGMENTS_IN_A_PIECE
    ]
    pieces = ("".join(parts[2 * i : 2 * j + 1]) for i, j in runs if (i, j) != (0, count - 1))
    return list(dict.fromkeys(p for p in pieces if len(p) >= 4))


def redact_url(url: str | SecretUrl) -> str:
    """`url` as it may be shown anywhere: its password replaced, e.g. http://u:[REDACTED]@h."""
    return str(url if isinstance(url, SecretUrl) else SecretUrl(url))


def without_userinfo(url: str) -> str:
    """`url` without its `user:password@` (by the masking's reading): for a client whose API
    authenticates otherwise, so the credentials are never sent."""
    span = url_password_span(url)
    at = span[1] if span is not None else url.rfind("@", 0, _host_end(url))
    return url if at == -1 else url[: url.find("://") + 3] + url[at + 1 :]


def _host_end(url: str) -> int:
    start = url.find("://") + 3
    ends = [i for i in (url.find(c, start) for c in "/?#") if i != -1]
    return min(ends, default=len(url))


def reveal(url: str | SecretUrl) -> str:
    """The URL with its password, for the one place that connects (a driver, an HTTP client)."""
    return url.reveal() if isinstance(url, SecretUrl) else url


class SecretUrl:
    """A URL setting whose password never shows: str(), repr() and f-strings mask it.

    `reveal()` gives the real URL to what connects; `without_password()` names the place (a
    progress key). It is no `str`, so it cannot be concatenated, logged or serialised with its
    password by accident.
    """

    __slots__ = ("_url", "_span")

    def __init__(self, url: str | SecretUrl) -> None:
        text = reveal(url)
        if not isinstance(text, str):
            raise TypeError(f"a URL must be text, not {type(text).__name__}")
        self._url = text
        self._span = url_password_span(text)

    def reveal(self) -> str:
        return self._url

    @property
    def has_password(self) -> bool:
        return self._span is not None

    def passwords(self) -> list[str]:
        """The password as written and %-decoded (what a driver or server may echo); [] if none."""
        if self._span is None:
            return []
        written = self._url[self._span[0] : self._span[1]]
        return list(dict.fromkeys([written, unquote(written)]))

    def passwords_and_pieces(self) -> list[str]:
        """`passwords`, then each piece of them a parser may take for the password, host or
        port (`password_pieces`): for the redactor of a parser's error about this URL only.
        Never for a log writer's: a password `Winter@2026` would mask every `2026` logged."""
        whole = self.passwords()
        return list(dict.fromkeys([*whole, *(p for w in whole for p in password_pieces(w))]))

    def without_password(self) -> str:
        """The URL minus its password (`http://u@h`); a URL without one is returned unchanged."""
        if self._span is None:
            return self._url
        start, end = self._span
        return self._url[: start - 1] + self._url[end:]

    def __str__(self) -> str:
        if self._span is None:
            return self._url
        start, end = self._span
        return self._url[:start] + REDACTED + self._url[end:]

    def __repr__(self) -> str:
        return f"SecretUrl({str(self)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretUrl):
            return self._url == other._url
        return isinstance(other, str) and self._url == other

    def __hash__(self) -> int:
        return hash(self._url)

    def __reduce__(self) -> tuple[type[SecretUrl], tuple[str]]:
        return SecretUrl, (self._url,)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> Any:
        """Settings fields: text or a SecretUrl in; the masked text out (model_dump_json)."""
        from pydantic_core import PydanticCustomError, core_schema

        def validate(value: Any) -> SecretUrl:
            if isinstance(value, cls):
                return value
            if not isinstance(value, str):
                raise PydanticCustomError("string_type", "Input should be a valid string")
            return cls(value)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


def error_kind(exc: BaseException) -> str:
    """An error's kind without its text: database errors carry SQL parameters, i.e. payload data."""
    orig = getattr(exc, "orig", None)
    kind = type(exc).__name__
    return f"{kind} ({type(orig).__name__})" if orig is not None else kind
