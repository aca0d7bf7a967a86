"""Posting an alert over real HTTP: retries bounded, failures explained, the URL never shown."""

from __future__ import annotations

import logging

import pytest

from segment_sync.alerts.outbox import AlertNotDelivered
from segment_sync.alerts.webhook import post_alert
from segment_sync.standins.server import free_port
from segment_sync_tests.alerts.receiver import TOKEN, serve_receiver


@pytest.fixture
def receiver():
    with serve_receiver() as receiver:
        yield receiver


def test_the_alert_is_posted_as_json_text(receiver):
    post_alert(receiver.url, "run failed", max_retries=0, timeout_s=5)
    assert receiver.attempts == [{"text": "run failed"}]


def test_a_500_is_retried_and_the_alert_delivered_once(receiver):
    receiver.answers = [500]
    post_alert(receiver.url, "run failed", max_retries=2, timeout_s=5)
    assert len(receiver.attempts) == 2 and receiver.delivered == ["run failed"]


def test_retries_are_bounded_and_the_error_names_the_status_not_the_url(receiver):
    receiver.answers = [500, 502, 503, 200]
    with pytest.raises(AlertNotDelivered) as raised:
        post_alert(receiver.url, "run failed", max_retries=2, timeout_s=5)
    assert len(receiver.attempts) == 3 and receiver.delivered == []
    assert "HTTP 503" in str(raised.value) and "alerts.webhook_url_env" in str(raised.value)
    assert TOKEN not in str(raised.value) and "xoxwebhooktoken" not in str(raised.value)


def test_a_refused_connection_is_explained_without_the_url():
    url = f"http://127.0.0.1:{free_port()}/services/{TOKEN}"
    with pytest.raises(AlertNotDelivered) as raised:
        post_alert(url, "run failed", max_retries=1, timeout_s=2)
    assert "unreachable" in str(raised.value) and "ConnectError" in str(raised.value)
    assert "xoxwebhooktoken" not in str(raised.value)


def test_the_request_line_httpx_logs_hides_the_url(receiver, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    post_alert(receiver.url, "run failed", max_retries=0, timeout_s=5)
    assert "HTTP Request: POST" in caplog.text
    assert "xoxwebhooktoken" not in caplog.text
