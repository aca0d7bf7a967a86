"""Escher request signing as Antavo uses it; shared by the Antavo client and its local stand-in.

Antavo signs API requests with Escher (an AWS SigV4 derivative) using these parameters, taken
from Antavo's own SDKs (antavo/loyalty-sdk-php `RestClient::signRequest`, the Node signer):
algorithm prefix `ANTAVO` (so `ANTAVO-HMAC-SHA256`), vendor key `Antavo`, hash SHA256,
auth header `Authorization`, date header `Date`, credential scope `<stack>/api/antavo_request`,
signed headers `host` and `date`, 300 s clock skew. The `escherauth` package does the work;
this module only pins those parameters and translates to and from plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

from escherauth import Escher, EscherException

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
