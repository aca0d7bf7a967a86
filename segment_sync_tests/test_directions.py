"""A direction without its secret, or a stream with an empty allow-list, is off: its sensor skips
with the reason, starts no run, and its watermark stays; `settings check` shows it."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.definitions import build_definitions
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.state import progress
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY


def progress_rows(settings) -> int:
    """Progress rows of every store and destination in the state database."""
    state = factory.outbound_state(settings, "no-key-needed-to-count")
    try:
        with state.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(progress)).scalar_one()
    finally:
        state.close()


def inbound_only(tmp_path, monkeypatch):
    """The manual's inbound-only setup: no outbound section, no write key in the environment."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.setenv("ANTAVO_API_KEY", "k")
    monkeypatch.setenv("ANTAVO_API_SECRET", "s")
    monkeypatch.delenv("SEGMENT_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "inbound_only.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "loyalty_store": {"url": f"sqlite:///{tmp_path}/loyalty.db"},
                "logs": {"dir": str(tmp_path / "logs")},
                "inbound": {
                    "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
                    "mappings": [{"name": "Profile updates", "action": "profile_update"}],
                },
            }
        )
    )
    # A state file beside the store (the default is relative to the working directory).
    text = path.read_text() + f"outbound:\n  state_url: sqlite:///{tmp_path}/state.db\n"
    path.write_text(text)
    return path


def _tick(defs, name, instance):
    # Only the resource the sensors take (the daemon builds no more): the write key resource,
    # an unset EnvVar here, belongs to the runs the sensors would start.
    context = dg.build_sensor_context(
        instance=instance, resources={"settings": defs.resources["settings"]}
    )
    return defs.resolve_sensor_def(name)(context), context


def test_inbound_only_outbound_sensors_skip_with_the_reason_and_start_nothing(
    tmp_path, monkeypatch
):
    path = inbound_only(tmp_path, monkeypatch)
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 50, 20, 10)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        for name in ("outbound_events_sensor", "outbound_profiles_sensor"):
            result, context = _tick(defs, name, instance)
            assert isinstance(result, dg.SkipReason), result
            assert "SEGMENT_WRITE_KEY (outbound.write_key_env) is not set" in result.skip_message
            assert context.cursor is None
        assert instance.get_runs() == []
    assert progress_rows(settings) == 0  # no watermark of any destination moved


def test_empty_allow_list_turns_only_that_stream_off(write_settings):
    path = write_settings(outbound={"event_sync": []})
    seed(LoyaltyStore(load_settings(path).loyalty_store.url), 30, 10, 5)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        events, _ = _tick(defs, "outbound_events_sensor", instance)
        profiles, _ = _tick(defs, "outbound_profiles_sensor", instance)
    assert (
        isinstance(events, dg.SkipReason) and "outbound.event_sync is empty" in events.skip_message
    )
    assert isinstance(profiles, dg.RunRequest)


def test_inbound_sensor_skips_without_antavo_credentials(write_settings, monkeypatch):
    path = write_settings()
    monkeypatch.delenv("ANTAVO_API_SECRET")
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        result, _ = _tick(defs, "inbound_buffer_sensor", instance)
    assert isinstance(result, dg.SkipReason)
    assert "ANTAVO_API_SECRET (inbound.api_secret_env) is not set" in result.skip_message


def test_inbound_sensor_skips_with_the_reason_when_no_mapping_is_listed(
    write_settings, antavo_standin
):
    path = write_settings(inbound={"base_url": antavo_standin.url})
    buffer = factory.inbound_buffer(load_settings(path))
    buffer.add_many([{"type": "identify", "messageId": "m-1", "userId": "c-1"}])
    with dg.instance_for_test() as instance:
        result, _ = _tick(build_definitions(str(path)), "inbound_buffer_sensor", instance)
    assert isinstance(result, dg.SkipReason)
    assert "inbound.mappings lists no mapping" in result.skip_message
    assert buffer.pending_count() == 1


def test_run_inbound_without_an_enabled_mapping_sends_nothing_and_keeps_every_event(
    write_settings, antavo_standin
):
    disabled = {"name": "Profile updates", "action": "profile_update", "enabled": False}
    path = write_settings(inbound={"base_url": antavo_standin.url, "mappings": [disabled]})
    buffer = factory.inbound_buffer(load_settings(path))
    buffer.add_many(
        [{"type": "identify", "messageId": f"m-{i}", "userId": "c-1"} for i in range(3)]
    )
    result = CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])
    assert result.exit_code == 1, result.output
    assert "every mapping in inbound.mappings is disabled" in result.output
    assert "3 item(s) pending" in result.output
    assert "Traceback" not in result.output
    assert buffer.counts()["pending"] == 3 and buffer.counts()["done"] == 0
    assert antavo_standin.stats()["events_registered"] == 0


def test_settings_check_says_inbound_sends_nothing_without_a_mapping(write_settings, monkeypatch):
    monkeypatch.setenv("ANTAVO_API_KEY", "k")
    monkeypatch.setenv("ANTAVO_API_SECRET", "s")
    path = write_settings()
    result = CliRunner().invoke(main, ["settings", "check", "--settings", str(path)])
    (line,) = [line for line in result.output.splitlines() if line.startswith("inbound ")]
    assert "OFF" in line and "inbound.mappings lists no mapping" in line


def test_run_outbound_skips_a_stream_that_is_off_and_leaves_its_watermark(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "event_sync": []})
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 40, 10, 5)
    result = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert "events: not run; outbound events are off: outbound.event_sync is empty" in result.output
    state = factory.outbound_state(settings, WRITE_KEY)
    assert state.watermark(Stream.EVENTS) == 0
    assert state.watermark(Stream.PROFILES) == 10
    assert all(m["type"] == "identify" for m in segment_standin.messages)


def test_settings_check_shows_directions_streams_and_missing_secrets(tmp_path, monkeypatch):
    path = inbound_only(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["settings", "check", "--settings", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("outbound ") and "OFF" in line for line in lines)
    assert any(line.startswith("outbound events") and "OFF" in line for line in lines)
    assert any(line.startswith("inbound ") and " on " in line for line in lines)
    missing = next(line for line in lines if line.startswith("MISSING SECRETS"))
    assert "SEGMENT_WRITE_KEY (outbound.write_key_env)" in missing
    assert "SEGMENT_WEBHOOK_SECRET (inbound.webhook_secret_env)" in missing
    assert "ANTAVO_API_KEY" not in missing


def test_a_sync_of_a_stream_that_is_off_refuses_and_leaves_the_watermark(
    write_settings, segment_standin
):
    from segment_sync.logs.store import LogWriter
    from segment_sync.outbound.results import StreamDisabled

    path = write_settings(outbound={"base_url": segment_standin.url, "event_sync": []})
    settings = load_settings(path)
    seed(LoyaltyStore(settings.loyalty_store.url), 25, 0, 5)
    sync = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    with pytest.raises(StreamDisabled, match="outbound.event_sync is empty"):
        sync.run(Stream.EVENTS, "run-off")
    assert factory.outbound_state(settings, WRITE_KEY).watermark(Stream.EVENTS) == 0
