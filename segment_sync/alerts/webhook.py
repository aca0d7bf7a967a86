"""POST one alert as `{"text": ...}` to a Slack-compatible incoming webhook, with retries.

The webhook URL is a secret (Slack's embeds a token): it never appears in an error, and the
request line httpx logs is redacted while a post is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import orjson

from segment_sync.alerts.outbox import AlertNotDelivered
from segment_sync.http import ApiClient, RetryPolicy, TimedPost, is_retryable, parse_retry_after
from segment_sync.redaction import Redactor

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 2.0  # also caps a Retry-After: a longer wait is the next tick's job
_FIX = "alerts.webhook_url_env names a variable holding a reachable webhook URL"


class _RedactRecords(logging.Filter):
    """Rewrites log records that would show a secret (httpx logs every request's URL)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def url_secrets(url: str) -> list[str]:
    """The URL and its path and query, which carry the token (errors may quote either)."""
    parts = urlsplit(url)
    return [url, parts.path, parts.query, f"{parts.path}?{parts.query}" if parts.query else ""]


def post_alert(url: str, text: str, *, max_retries: int, timeout_s: float) -> None:
    """Deliver `text`; retryable failures (5xx, 408, 429, network) are retried `max_retries`
    times. Raises AlertNotDelivered with a redacted reason when the webhook did not take it."""
    asyncio.run(_post(url, text, max_retries=max_retries, timeout_s=timeout_s))


async def _post(url: str, text: str, *, max_retries: int, timeout_s: float) -> None:
    body = orjson.dumps({"text": text})
    headers = {"Content-Type": "application/json"}
    client = ApiClient(secrets=url_secrets(url), timeout_s=timeout_s, max_connections=1)
    hide = _RedactRecords(client.redactor)
    httpx_log = logging.getLogger("httpx")
    httpx_log.addFilter(hide)
    try:
        async with client:

            async def attempt(_: int) -> TimedPost:
                return await client.timed_post(url, body, headers, fix=_FIX)

            last = await RetryPolicy(max_retries, BACKOFF_BASE_S, BACKOFF_CAP_S).call(
                attempt,
                retryable=lambda post: is_retryable(_status(post)),
                retry_after=_retry_after,
            )
    finally:
        httpx_log.removeFilter(hide)
    if last.response is None:
        raise AlertNotDelivered(f"the alerts webhook is unreachable: {last.error}")
    if not last.response.is_success:
        answer = client.redactor.text(last.response.text[:200].strip())
        raise AlertNotDelivered(
            f"the alerts webhook answered HTTP {last.response.status_code}"
            + (f" ({answer})" if answer else "")
            + f" after {max_retries + 1} attempt(s); check that {_FIX}"
        )


def _status(post: TimedPost) -> int | None:
    return post.response.status_code if post.response is not None else None


def _retry_after(post: TimedPost) -> float | None:
    asked = parse_retry_after(post.response.headers.get("Retry-After") if post.response else None)
    return None if asked is None else min(asked, BACKOFF_CAP_S)
