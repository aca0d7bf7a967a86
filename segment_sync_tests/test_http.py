"""The retry rules both API clients share."""

from __future__ import annotations

import pytest

from segment_sync.http import is_retryable, parse_retry_after


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("99999") == 300.0  # never wait more than 5 minutes


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504])
def test_network_errors_timeouts_throttling_and_server_errors_are_retried(status):
    assert is_retryable(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 413, 422])
def test_success_and_client_errors_are_not_retried(status):
    assert not is_retryable(status)
