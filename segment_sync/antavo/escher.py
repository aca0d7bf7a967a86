"""Escher request signing as Antavo uses it; shared by the Antavo client and its local stand-in.

Antavo signs API requests with Escher (an AWS SigV4 derivative) using these parameters, taken
from Antavo's own SDKs (antavo/loyalty-sdk-php `RestClient::signRequest`, the Node signer):
algorithm prefix `ANTAVO` (so `ANTAVO-HMAC-SHA256`), vendor key `Antavo`, hash SHA256,
auth header `Authorization`, date header `Date`, credential scope `<stack>/api/antavo_request`,
signed headers `host` and `date`, 300 s clock skew. The `escherauth` package does the work;
this module only pins those parameters and translates to and from plain values. `Signer` signs
the same way with what stays the same between requests computed once (see its docstring).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from escherauth import Escher, EscherException, EscherRequest

from segment_sync.settings import ANTAVO_API_KEY

ALGO_PREFIX = "ANTAVO"
VENDOR_KEY = "Antavo"
HASH_ALGO = "SHA256"
AUTH_HEADER = "Authorization"
DATE_HEADER = "Date"
CLOCK_SKEW_S = 300
SERVICE = "api"
# escherauth parses `Credential=` with [A-Za-z0-9/\-_ ]+, so keys outside this set cannot verify.
_STACK_RE = re.compile(r"[A-Za-z0-9_-]+")


class EscherAuthError(Exception):
    """A request's Escher signature is missing, malformed, stale or wrong (no secret in the text)."""


def credential_scope(stack: str) -> str:
    """Antavo's credential scope for a stack, e.g. `st2/api/antavo_request`."""
    return f"{stack}/{SERVICE}/antavo_request"


def check_credentials(api_key: str, api_secret: str, stack: str) -> None:
    """Raise ValueError if key, secret or stack cannot be used for Escher (never echoes them)."""
    if not api_key or not ANTAVO_API_KEY.fullmatch(api_key):
        raise ValueError("Antavo API key must be non-empty: letters, digits, '-' and '_' only")
    if not api_secret:
        raise ValueError("Antavo API secret must be non-empty")
    if not stack or not _STACK_RE.fullmatch(stack):
        raise ValueError("Antavo stack must be non-empty: letters, digits, '-' and '_' only")


def _escher(api_key: str, api_secret: str, stack: str, now: datetime | None) -> Escher:
    """A fresh escherauth signer/verifier with Antavo's parameters."""
    options = {
        "algo_prefix": ALGO_PREFIX,
        "vendor_key": VENDOR_KEY,
        "hash_algo": HASH_ALGO,
        "auth_header_name": AUTH_HEADER,
        "date_header_name": DATE_HEADER,
        "clock_skew": CLOCK_SKEW_S,
        "current_time": now,
    }
    return Escher(api_key, api_secret, credential_scope(stack), options)


def sign_request(
    api_key: str,
    api_secret: str,
    stack: str,
    method: str,
    url: str,
    body: bytes,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers (Host, Date, Authorization) that sign this request; `url` is absolute."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = {
        "method": method.upper(),
        "url": path,
        "host": parts.netloc.rpartition("@")[2],  # never a user:password
        "headers": [],
        "body": body.decode("utf-8"),
    }
    try:
        signed = _escher(api_key, api_secret, stack, now).sign_request(request)
    except EscherException as exc:  # messages are fixed strings, never key material
        raise ValueError(f"cannot sign Antavo request: {exc}") from None
    return {name: value for name, value in signed["headers"]}


class Signer:
    """`sign_request` for one key, secret and stack, a tenth of its CPU per request: escherauth
    re-derives the signing key (four HMACs), re-parses the URL and re-formats the dates for
    each request; here they are kept per URL, per day and per second, and the body is hashed
    as bytes. The URL's parts are still canonicalised by escherauth itself (once per URL)."""

    def __init__(self, api_key: str, api_secret: str, stack: str) -> None:
        self._escher = _escher(api_key, api_secret, stack, None)
        self._secret = api_secret
        self._scope = credential_scope(stack)
        self._urls: dict[tuple[str, str], tuple[str, str, str]] = {}  # see _url
        self._second: tuple[int, str, str, str, str] | None = None  # see _dates
        self._day: tuple[str, bytes] | None = None  # (short date, signing key)

    def headers(
        self, method: str, url: str, body: bytes, *, now: datetime | None = None
    ) -> dict[str, str]:
        """Headers (Host, Date, Authorization) that sign this request, as `sign_request`'s; `url`
        is absolute, `body` UTF-8 (orjson's output is)."""
        start, host, host_line = self._urls.get((method, url)) or self._url(method, url)
        _, date, date_line, long_date, short_date = self._dates(now)
        if self._day is None or self._day[0] != short_date:
            key = _hmac(f"{ALGO_PREFIX}{self._secret}".encode(), short_date)
            for part in self._scope.split("/"):
                key = _hmac(key, part)
            self._day = (short_date, key)
        canonical = f"{start}{date_line}{host_line}{hashlib.sha256(body).hexdigest()}"
        algo_id = self._escher.algo_id
        to_sign = (
            f"{algo_id}\n{long_date}\n{short_date}/{self._scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.digest(self._day[1], to_sign.encode(), "sha256").hex()
        authorization = (
            f"{algo_id} Credential={self._escher.api_key}/{short_date}/{self._scope}, "
            f"SignedHeaders=date;host, Signature={signature}"
        )
        return {"Host": host, DATE_HEADER: date, AUTH_HEADER: authorization}

    def _dates(self, now: datetime | None) -> tuple[int, str, str, str, str]:
        """(second, Date header, its canonical line, long date, short date), kept per second."""
        second = int(time.time()) if now is None else None
        if second is not None and self._second is not None and self._second[0] == second:
            return self._second
        when = datetime.fromtimestamp(second, UTC) if now is None else now
        e = self._escher
        date = e.header_date(when)
        dates = (
            second or 0,
            date,
            f"date:{e.normalize_white_spaces(date)}\n",
            e.long_date(when),
            e.short_date(when),
        )
        if second is not None:
            self._second = dates
        return dates

    def _url(self, method: str, url: str) -> tuple[str, str, str]:
        """The canonical request's method, path and query lines, the Host header, and its
        canonical line with the signed headers', for a URL."""
        if len(self._urls) >= 64:  # a client posts to a handful of URLs
            self._urls.clear()
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]  # never a user:password
        request = {"method": method.upper(), "url": path, "host": host, "headers": [], "body": ""}
        try:
            parsed = EscherRequest(request)
        except EscherException as exc:  # messages are fixed strings, never key material
            raise ValueError(f"cannot sign Antavo request: {exc}") from None
        e = self._escher
        start = (
            f"{parsed.method()}\n{e.canonicalize_path(parsed.path())}\n"
            f"{e.canonicalize_query(parsed.query_parts())}\n"
        )
        host_line = f"host:{e.normalize_white_spaces(host)}\n\ndate;host\n"
        self._urls[(method, url)] = (start, host, host_line)
        return start, host, host_line


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode(), "sha256")


def verify_request(
    method: str,
    path_and_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    credentials: Mapping[str, str],
    stack: str,
    *,
    now: datetime | None = None,
) -> str:
    """The API key that validly signed this request, or EscherAuthError."""
    request = {
        "method": method.upper(),
        "url": path_and_query,
        "headers": [[name, value] for name, value in headers],
        "body": body.decode("utf-8", errors="replace"),
    }
    # The key/secret of the verifier itself are unused by authenticate(); key_db decides.
    verifier = _escher("verifier", "unused", stack, now)
    try:
        return verifier.authenticate(request, dict(credentials), [DATE_HEADER.lower()])
    except EscherException as exc:
        raise EscherAuthError(str(exc)) from None
    except (ValueError, TypeError, KeyError, IndexError):
        raise EscherAuthError("Malformed authorization parameters") from None
