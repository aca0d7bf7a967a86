"""Whole-request failures that are not the events' fault: Antavo down or throttling, a wrong address.

Only Antavo's own answer about an event (its error object, or a per-event result) says the
event is at fault. A 503, 408 or 429 after the client's retries, a network error before the
request was sent, or a 404/405 whose body is not Antavo's error shape (a gateway's page: the
base URL's path is wrong) or a 3xx (a redirect: http to https, a portal) say nothing about the
events: the ingest leaves them pending.

Any other 5xx (500, 502, 504...) came after the request was sent and says nothing of what Antavo
did with it: it may have registered the events (a gateway timing out, a crash after the commit).
Antavo has no idempotency key, so they are never retried: their events are `unknown` and the
fault (UNSURE) stops the run, so the rest of the backlog stays pending. So does a 2xx whose body
is not a JSON object (UNREADABLE: a catch-all page at a wrong inbound.base_url, or a broken
answer): Antavo may have registered that request's events, but the next request would fare the
same.
"""

from __future__ import annotations

UNREACHABLE = "unreachable"  # no connection: nothing was sent (http.TimedPost.surely_unsent)
UNAVAILABLE = "unavailable"  # 503 or 408 to every retry: nothing registered
RATE_LIMITED = "rate_limited"  # 429 to every retry
MISROUTED = "misrouted"  # 3xx, or 404/405 from something that is not Antavo's Events API
UNSURE = "unsure"  # another 5xx: its events are unknown, and the run stops
UNREADABLE = "unreadable"  # a 2xx that is not a JSON object: unknown, and the run stops
# Sent, then no (whole) answer: a read timeout, the deadline, the connection lost. Unknown, and
# the run stops: Antavo too slow would otherwise turn the whole backlog into unknown items.
UNANSWERED = "unanswered"
# Statuses that ask the client to come back later: Antavo did not act on the request. Every
# other 5xx may come after Antavo registered the events.
RETRYABLE_STATUSES = frozenset({408, 429, 503})
# Faults carried by `unknown` events (they may be registered) that still stop the run.
STOPPING_UNKNOWN = frozenset({UNSURE, UNREADABLE, UNANSWERED})


def is_retryable(status: int | None) -> bool:
    """True for a network error surely before sending (no status), 408, 429 or 503."""
    return status is None or status in RETRYABLE_STATUSES


def request_fault(status: int, antavo_error: bool) -> str | None:
    """The fault of a non-2xx answer that is not about its events (`antavo_error`: its body is
    Antavo's `{"error": {...}}`), else None."""
    if status == 429:
        return RATE_LIMITED
    if status in (408, 503):
        return UNAVAILABLE
    if status >= 500:
        return UNSURE
    if status in (404, 405) and not antavo_error or 300 <= status < 400:
        return MISROUTED  # a redirect: Antavo's API answers, it does not send elsewhere
    return None
