"""The `segment-sync` command line, driven through click's runner against real services."""

from __future__ import annotations

from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_settings_check_accepts_a_valid_file(write_settings):
    result = invoke("settings", "check", "--settings", str(write_settings()))
    assert result.exit_code == 0 and "settings OK" in result.output


def test_settings_check_names_each_bad_key_and_exits_non_zero(write_settings):
    path = write_settings(outbound={"region": "asia", "chunk_size": 0})
    result = invoke("settings", "check", "--settings", str(path))
    assert result.exit_code == 1
    assert "outbound.region" in result.output and "outbound.chunk_size" in result.output


def test_demo_seed_writes_realistic_events_and_profile_changes(write_settings):
    path = write_settings()
    result = invoke(
        "demo",
        "seed",
        "--events",
        "300",
        "--profiles",
        "60",
        "--customers",
        "40",
        "--settings",
        str(path),
    )
    assert result.exit_code == 0, result.output
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    events = store.events_after(0, 10**9, 1000)
    changes = store.profile_changes_after(0, 10**9, 1000)
    assert len(events) == 300 and len(changes) == 60
    assert len({e.action for e in events}) >= 4
    assert any(e.external_customer_id is None for e in events)
    assert any(e.external_customer_id for e in events)
    fields = {k for c in changes for k in c.attributes}
    assert {"email", "tier"} <= fields  # allow-listed and other fields


def test_run_outbound_prints_a_summary_and_exits_zero(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    invoke("demo", "seed", "--events", "200", "--profiles", "20", "--settings", str(path))
    result = invoke("run", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert (
        "events" in result.output and "profiles" in result.output and "succeeded" in result.output
    )
    assert WRITE_KEY not in result.output


def test_run_outbound_exits_non_zero_when_segment_is_down(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 1})
    invoke("demo", "seed", "--events", "50", "--profiles", "0", "--settings", str(path))
    segment_standin.set_faults(outage_requests=1000)
    result = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert result.exit_code == 1
    assert "FAILED" in result.output and "HTTP 503" in result.output


def test_serve_webhooks_refuses_to_start_without_a_secret(write_settings, monkeypatch):
    monkeypatch.delenv("SEGMENT_WEBHOOK_SECRET", raising=False)
    result = invoke("serve-webhooks", "--settings", str(write_settings()))
    assert result.exit_code == 1
    assert "SEGMENT_WEBHOOK_SECRET" in result.output and "--insecure" in result.output


PROFILE_UPDATES = {"name": "Profile updates", "action": "profile_update"}


def test_run_inbound_ingests_the_buffer_and_prints_a_summary(
    write_settings, antavo_standin, tmp_path
):
    from segment_sync.inbound.buffer import InboundBuffer

    path = write_settings(
        inbound={
            "base_url": antavo_standin.url,
            "buffer_url": f"sqlite:///{tmp_path}/in.db",
            "mappings": [PROFILE_UPDATES],
        }
    )
    InboundBuffer(f"sqlite:///{tmp_path}/in.db").add_many(
        [
            {
                "type": "identify",
                "messageId": "m-1",
                "userId": "c-1",
                "traits": {"email": "a@example.com"},
            }
        ]
    )
    result = invoke("run", "inbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "done 1" in result.output and "succeeded" in result.output
    assert antavo_standin.events[0]["action"] == "profile"


def test_run_inbound_exits_non_zero_when_an_item_fails(write_settings, antavo_standin, tmp_path):
    from segment_sync.inbound.buffer import InboundBuffer

    path = write_settings(
        inbound={
            "base_url": antavo_standin.url,
            "buffer_url": f"sqlite:///{tmp_path}/in.db",
            "mappings": [PROFILE_UPDATES],
        }
    )
    InboundBuffer(f"sqlite:///{tmp_path}/in.db").add_many(
        [{"type": "identify", "messageId": "m-2", "traits": {}}]
    )
    result = invoke("run", "inbound", "--settings", str(path))
    assert result.exit_code == 1
    assert "FAILED" in result.output and "customer" in result.output


def test_standin_help_lists_both_stand_ins():
    result = invoke("standin", "--help")
    assert result.exit_code == 0
    assert "segment" in result.output and "antavo" in result.output


def test_every_standin_option_is_described_in_its_help():
    for which in ("segment", "antavo"):
        result = CliRunner().invoke(main, ["standin", which, "--help"])
        assert result.exit_code == 0, result.output
        options = result.output.split("options:", 1)[1]
        # argparse puts an option's help on its line or on the next; a bare option has neither.
        lines = [line for line in options.splitlines() if line.strip()]
        bare = [
            line.strip()
            for line, after in zip(lines, [*lines[1:], ""], strict=True)
            if line.startswith("  --") and len(line.split("  ")) < 3 and after.startswith("  --")
        ]
        assert "--port" in options and not bare, f"{which}: undescribed options {bare}"


DOWN_PG = "postgresql://sync:pw-not-for-logs@127.0.0.1:9/nope"  # port 9: nothing listens


def test_run_outbound_with_postgresql_down_is_one_error_without_the_password(write_settings):
    path = write_settings(loyalty_store={"url": DOWN_PG})
    result = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert result.exit_code == 1
    assert "cannot use the database" in result.output and "loyalty_store.url" in result.output
    assert "Traceback" not in result.output and "pw-not-for-logs" not in result.output


def test_serve_webhooks_with_postgresql_down_is_one_error_without_the_password(
    write_settings, monkeypatch
):
    monkeypatch.setenv("SEGMENT_WEBHOOK_SECRET", "whsec-test-123")
    path = write_settings(inbound={"buffer_url": DOWN_PG})
    result = CliRunner().invoke(main, ["serve-webhooks", "--settings", str(path), "--port", "9"])
    assert result.exit_code == 1
    assert "cannot use the database" in result.output and "inbound.buffer_url" in result.output
    assert "Traceback" not in result.output and "pw-not-for-logs" not in result.output


def test_run_inbound_with_a_malformed_antavo_key_is_one_error_naming_the_variable(
    write_settings, monkeypatch
):
    monkeypatch.setenv("ANTAVO_API_KEY", "ak live 123")  # a space: pasted with its label
    path = write_settings()
    result = CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])
    assert result.exit_code == 1
    assert "inbound.api_key_env: the value of ANTAVO_API_KEY is not an Antavo API key" in (
        result.output
    )
    assert "Traceback" not in result.output and "ak live 123" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_run_outbound_with_logs_dir_a_file_is_one_error_naming_logs_dir(write_settings, tmp_path):
    not_a_folder = tmp_path / "logs-file"
    not_a_folder.write_text("oops")
    path = write_settings(logs={"dir": str(not_a_folder)})
    result = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert result.exit_code == 1
    assert f"logs.dir ({not_a_folder})" in result.output
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
