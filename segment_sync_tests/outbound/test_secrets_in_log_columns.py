"""A configured secret in any field of the loyalty data never reaches an outbound log column:
real syncs against the Segment stand-in, rows read back with DuckDB."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from segment_sync.loyalty.records import NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.syncs import outbound_sync
from segment_sync_tests.secret_rows import SECRETS, leaks

FIELDS = [
    "event customer",
    "event action",
    "event data value",
    "event data key",
    "unreadable event action",
    "unreadable event customer",
    "profile customer",
    "profile attribute",
]


def _settings_file(folder: Path, base_url: str, action: str) -> Path:
    data = {
        "general": {"customer_id_mapping": "customer_id"},
        "loyalty_store": {"url": f"sqlite:///{folder}/loyalty.db"},
        "outbound": {
            "base_url": base_url,
            "event_sync": ["point_add", action],
            "customer_fields_sync": ["first_name", "email"],
            "state_url": f"sqlite:///{folder}/state.db",
            "backoff_cap_s": 0.2,
            "follow_s": 0,
        },
        "logs": {"dir": str(folder / "logs")},
    }
    path = folder / "segment_sync.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _store_with_secret(store: LoyaltyStore, field: str, secret: str) -> None:
    """One row holding the secret in `field`, between two plain ones."""
    store.append_events([NewEvent("c-plain", "point_add", {"n": 1})])
    store.append_profile_changes([NewProfileChange("c-plain", {"email": "a@example.com"})])
    event, profile = NewEvent("c-1", "point_add", {"n": 2}), None
    if field == "event customer":
        event = NewEvent(f"c-{secret}", "point_add", {})
    elif field == "event action":
        event = NewEvent("c-1", f"act-{secret}", {})
    elif field == "event data value":
        event = NewEvent("c-1", "point_add", {"note": f"pasted: {secret}"})
    elif field == "event data key":
        event = NewEvent("c-1", "point_add", {secret: 1})
    elif field == "unreadable event action":
        insert_raw(store, loyalty_events, action=f"act-{secret}", data='{"n": 1,')
    elif field == "unreadable event customer":
        insert_raw(store, loyalty_events, customer_id=f"c-{secret}", data='{"n": 1,')
    elif field == "profile customer":
        profile = NewProfileChange(f"c-{secret}", {"first_name": "Anna"})
    elif field == "profile attribute":
        profile = NewProfileChange("c-1", {"first_name": secret})
    store.append_events([event])
    if profile is not None:
        store.append_profile_changes([profile])


@pytest.mark.parametrize("field", FIELDS)
@settings(
    max_examples=4,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a whole run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=SECRETS)
def test_a_secret_in_the_data_reaches_no_outbound_log_column(
    field, secret, segment_standin, monkeypatch
):
    """The secret (the Antavo API secret here: every configured one is masked alike), also
    with characters JSON escapes, is in no column of outbound_log or outbound_messages, nor in
    the run's error."""
    monkeypatch.setenv("ANTAVO_API_SECRET", secret)
    with tempfile.TemporaryDirectory() as folder:
        path = _settings_file(Path(folder), segment_standin.url, f"act-{secret}")
        sync = outbound_sync(load_settings(path))
        _store_with_secret(sync.store, field, secret)
        errors = []
        for stream in (Stream.EVENTS, Stream.PROFILES):
            try:
                sync.run(stream, f"run-{stream.value}")
            except OutboundFailed as failed:
                errors.append(str(failed))
        assert leaks(sync.settings.logs.dir, ["outbound_log", "outbound_messages"], secret) == []
        assert not [e for e in errors if secret in e]
