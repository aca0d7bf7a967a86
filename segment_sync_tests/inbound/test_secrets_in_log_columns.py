"""A configured secret in any field of a received Segment event never reaches an inbound log
column: signed webhooks -> receiver -> buffer -> real ingest against the Antavo stand-in, rows
read back with DuckDB."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from segment_sync import factory
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync.logs.store import LogWriter
from segment_sync.settings import load_settings
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WEBHOOK_SECRET
from segment_sync_tests.secret_rows import SECRETS, leaks

ANY_TRACK = {
    "name": "Any track",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {
        "action": {"@path": "$.event"},
        "data": {"note": {"@path": "$.properties.note"}},
    },
}
PROFILES = {"name": "Profile updates", "action": "profile_update"}
PLAIN = {"type": "track", "messageId": "m-plain", "userId": "c-plain", "event": "checkout"}


def _event(field: str, secret: str) -> dict:
    """A received event holding the secret in `field`."""
    track = {"type": "track", "messageId": "m-1", "userId": "c-1", "event": "checkout"}
    if field == "messageId":
        return {**track, "messageId": f"m-{secret}"}
    if field == "type":
        return {**track, "type": f"t-{secret}"}
    if field == "userId":
        return {**track, "userId": f"c-{secret}"}
    if field == "event":
        return {**track, "event": f"act-{secret}"}
    if field == "property":
        return {**track, "properties": {"note": secret}}
    assert field == "trait"
    return {
        "type": "identify",
        "messageId": "m-2",
        "userId": "c-1",
        "traits": {"first_name": secret},
    }


def _settings_file(folder: Path, antavo_url: str) -> Path:
    data = {
        "general": {"customer_id_mapping": "customer_id"},
        "loyalty_store": {"url": f"sqlite:///{folder}/loyalty.db"},
        "inbound": {
            "base_url": antavo_url,
            "buffer_url": f"sqlite:///{folder}/inbound.db",
            "mappings": [ANY_TRACK, PROFILES],
            "max_attempts": 1,
            "max_retries": 0,
        },
        "logs": {"dir": str(folder / "logs")},
    }
    path = folder / "segment_sync.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _post(url: str, event: dict) -> None:
    body = orjson.dumps(event)
    headers = {"X-Signature": sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    httpx.post(f"{url}/segment", content=body, headers=headers)  # a refused one stores nothing


@pytest.mark.parametrize("field", ["messageId", "type", "userId", "event", "property", "trait"])
@settings(
    max_examples=3,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a whole run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=SECRETS)
def test_a_secret_in_a_received_event_reaches_no_inbound_log_column(
    field, secret, antavo_standin, monkeypatch
):
    """The secret (the Segment write key here: every configured one is masked alike), also
    with characters JSON escapes, is in no column of inbound_log or inbound_items, nor in the
    run's error."""
    monkeypatch.setenv("SEGMENT_WRITE_KEY", secret)
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_settings(_settings_file(Path(folder), antavo_standin.url))
        buffer = InboundBuffer(loaded.inbound.buffer_url)
        with serve_in_thread(create_receiver_app(buffer, WEBHOOK_SECRET)) as receiver:
            _post(receiver, PLAIN)
            _post(receiver, _event(field, secret))
        ingest = factory.inbound_ingest(
            loaded, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(loaded.logs.dir), backoff_base_s=0.01
        )
        error = ""
        try:
            ingest.run("run-1")
        except Exception as exc:  # a failed item fails the run; its text is checked too
            error = str(exc)
        assert leaks(loaded.logs.dir, ["inbound_log", "inbound_items"], secret) == []
        assert secret not in error
