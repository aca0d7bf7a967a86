"""Whole-request failures that are not the events' fault: Antavo down or throttling, a wrong address.

Only Antavo's own answer about an event (its error object, or a per-event result) says the
event is at fault. A 5xx, 408 or 429 after the client's retries, a network error before the
request was sent, or a 404/405 whose body is not Antavo's error shape (a gateway's page: the
base URL's path is wrong) say nothing about the events: the ingest leaves them pending.
"""

from __future__ import annotations

UNREACHABLE = "unreachable"  # no connection: nothing was sent
UNAVAILABLE = "unavailable"  # 5xx or 408 to every retry
RATE_LIMITED = "rate_limited"  # 429 to every retry
MISROUTED = "misrouted"  # 404/405 from something that is not Antavo's Events API

# Network errors raised before any byte of the request left (httpx's names, see http.py's
# TimedPost.error); a read timeout or a dropped answer may come after Antavo registered.
_NOT_SENT = ("ConnectError:", "ConnectTimeout:", "PoolTimeout:", "UnsupportedProtocol:")


def request_fault(status: int, antavo_error: bool) -> str | None:
    """The fault of a non-2xx answer that is not about its events (`antavo_error`: its body is
    Antavo's `{"error": {...}}`), else None."""
    if status == 429:
        return RATE_LIMITED
    if status == 408 or status >= 500:
        return UNAVAILABLE
    if status in (404, 405) and not antavo_error:
        return MISROUTED
    return None


def network_fault(error: str | None) -> str | None:
    """UNREACHABLE for a network error raised before the request was sent, else None."""
    return UNREACHABLE if error is not None and error.startswith(_NOT_SENT) else None
