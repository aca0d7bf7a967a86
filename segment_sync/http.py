"""The HTTP rules both API clients share: which answers are worth retrying, and Retry-After."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

MAX_RETRY_AFTER_S = 300.0
# 408 and 429 ask the client to come back; 5xx is the server's fault; None is a network error.
RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable(status: int | None) -> bool:
    """True for a network error (no status), 408, 429 or any 5xx."""
    return status is None or status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped at 5 minutes."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
