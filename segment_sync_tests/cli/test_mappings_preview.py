"""`segment-sync mappings preview` against a real SQLite webhook buffer; nothing is sent."""

from __future__ import annotations

import json

from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

ORDERS = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {"action": "purchase", "data": {"total": {"@path": "$.properties.total"}}},
}
PROFILES = {"name": "Profiles", "action": "profile_update"}


def invoke(*args: str):
    return CliRunner().invoke(main, ["mappings", "preview", *args], catch_exceptions=False)


def _setup(write_settings, tmp_path, events: list[dict], mappings=(ORDERS, PROFILES)):
    url = f"sqlite:///{tmp_path}/in.db"
    path = write_settings(inbound={"buffer_url": url, "mappings": list(mappings)})
    buffer = InboundBuffer(url)
    if events:
        buffer.add_many(events)
    return str(path), buffer


def _order(message_id: str, total: object) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": "c-1",
        "properties": {"total": total},
    }


def test_preview_uses_the_newest_matching_buffered_event(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [_order("m-1", 1), _order("m-2", 2)])
    result = invoke("--settings", path, "--mapping", "Orders")
    assert result.exit_code == 0, result.output
    assert "messageId m-2, type track, event Order Completed" in result.output
    assert "POST /events" in result.output and '"total": 2' in result.output


def test_preview_leaves_every_buffer_item_pending_and_unclaimed(write_settings, tmp_path):
    path, buffer = _setup(write_settings, tmp_path, [_order("m-1", 1)])
    before = buffer.get_by_message_id("m-1")
    invoke("--settings", path)
    assert buffer.get_by_message_id("m-1") == before
    assert buffer.counts()["pending"] == 1


def test_preview_without_mapping_shows_every_configured_mapping(write_settings, tmp_path):
    identify = {"type": "identify", "messageId": "m-3", "userId": "c-3", "traits": {"email": "a@b"}}
    path, _ = _setup(write_settings, tmp_path, [_order("m-1", 1), identify])
    result = invoke("--settings", path)
    assert "mapping 'Orders'" in result.output and "mapping 'Profiles'" in result.output
    assert '"action": "profile"' in result.output and '"action": "purchase"' in result.output


def test_preview_never_prints_the_antavo_credentials(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [_order("m-1", ANTAVO_SECRET)])
    result = invoke("--settings", path)
    assert ANTAVO_SECRET not in result.output and ANTAVO_KEY not in result.output
    assert "[REDACTED]" in result.output


def test_an_event_file_is_evaluated_instead_of_the_buffer(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [_order("m-1", 1)])
    event = tmp_path / "e.json"
    event.write_text(json.dumps(_order("file-1", 42)))
    result = invoke("--settings", path, "--mapping", "Orders", "--event", str(event))
    assert result.exit_code == 0, result.output
    assert "messageId file-1" in result.output and '"total": 42' in result.output


def test_an_event_file_that_does_not_match_is_explained_per_condition(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [])
    event = tmp_path / "e.json"
    event.write_text(json.dumps({"type": "identify", "messageId": "x", "userId": "c"}))
    result = invoke("--settings", path, "--mapping", "Orders", "--event", str(event))
    assert result.exit_code == 1
    assert "condition 'Event type is track': event type is identify" in result.output
    assert "condition 'Event name is Order Completed': event name is missing" in result.output


def test_no_matching_buffered_event_is_explained_per_condition(write_settings, tmp_path):
    viewed = {"type": "track", "event": "Viewed", "messageId": "m-1", "userId": "c"}
    path, _ = _setup(write_settings, tmp_path, [viewed])
    result = invoke("--settings", path, "--mapping", "Orders")
    assert result.exit_code == 1
    assert "none of the 1 newest buffered event(s) matches" in result.output
    assert "condition 'Event name is Order Completed': event name is Viewed" in result.output


def test_an_unknown_mapping_name_lists_the_configured_ones_and_exits_2(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [])
    result = invoke("--settings", path, "--mapping", "Nope")
    assert result.exit_code == 2
    assert "no mapping named 'Nope'; configured mappings: 'Orders', 'Profiles'" in result.output
    assert "Traceback" not in result.output


def test_an_event_file_that_is_not_json_is_one_clear_error(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [])
    event = tmp_path / "e.json"
    event.write_text("{not json")
    result = invoke("--settings", path, "--event", str(event))
    assert result.exit_code == 1
    assert "not valid JSON" in result.output and "Traceback" not in result.output


def test_an_event_file_holding_a_batch_is_refused_clearly(write_settings, tmp_path):
    path, _ = _setup(write_settings, tmp_path, [])
    event = tmp_path / "e.json"
    event.write_text(json.dumps([_order("m-1", 1)]))
    result = invoke("--settings", path, "--event", str(event))
    assert result.exit_code == 1
    assert "expected one Segment event (a JSON object), got list" in result.output
