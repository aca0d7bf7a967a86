"""The `alerts` settings: off by default, `on` validated naming the bad value and the allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from segment_sync.directions import status_lines
from segment_sync.settings import SettingsError, load_settings, parse_settings


def test_alerts_are_off_by_default():
    alerts = parse_settings({}).alerts
    assert alerts.webhook_url_env is None
    assert not alerts.enabled("run_failure") and not alerts.enabled("check_failure")


def test_naming_the_variable_turns_both_kinds_on():
    alerts = parse_settings({"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL"}}).alerts
    assert alerts.enabled("run_failure") and alerts.enabled("check_failure")
    assert alerts.ui_base_url == "http://localhost:3000"


def test_on_limits_the_kinds():
    settings = {"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL", "on": ["check_failure"]}}
    alerts = parse_settings(settings).alerts
    assert alerts.enabled("check_failure") and not alerts.enabled("run_failure")


def test_an_unknown_kind_names_the_bad_value_and_the_allowed_ones():
    with pytest.raises(SettingsError) as raised:
        parse_settings({"alerts": {"on": ["run_failure", "check_failures"]}})
    [problem] = raised.value.problems
    assert problem.startswith("alerts.on.1:") and "'check_failures'" in problem
    assert "'run_failure'" in problem and "'check_failure'" in problem


def test_a_webhook_url_pasted_as_the_variable_name_is_refused_without_echoing_it():
    url = "https://hooks.slack.com/services/T000/B000/xoxtoken0123456789"
    with pytest.raises(SettingsError) as raised:
        parse_settings({"alerts": {"webhook_url_env": url}})
    assert "alerts.webhook_url_env" in str(raised.value) and "xoxtoken" not in str(raised.value)


def test_the_ui_base_url_must_be_an_http_url():
    with pytest.raises(SettingsError, match="alerts.ui_base_url"):
        parse_settings({"alerts": {"ui_base_url": "localhost:3000"}})


def test_the_webhook_variable_counts_as_a_secret_for_redaction():
    settings = parse_settings({"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL"}})
    assert "SLACK_WEBHOOK_URL" in settings.secret_env_names()


def test_settings_check_says_alerts_are_off_by_default():
    lines = "\n".join(status_lines(parse_settings({})))
    assert "alerts             OFF  alerts.webhook_url_env is not set" in lines


def test_settings_check_names_the_alert_kinds_when_the_webhook_variable_is_set(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/xyz")
    lines = status_lines(parse_settings({"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL"}}))
    assert "alerts             on   run_failure, check_failure to $SLACK_WEBHOOK_URL" in "\n".join(
        lines
    )
    assert "hooks.example.com" not in "\n".join(lines)


def test_settings_check_shows_alerts_off_while_the_webhook_variable_is_unset(monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    lines = status_lines(parse_settings({"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL"}}))
    [alerts] = [line for line in lines if line.startswith("alerts ")]
    assert alerts == (
        "alerts             OFF  environment variable SLACK_WEBHOOK_URL (alerts.webhook_url_env) "
        "is not set; export SLACK_WEBHOOK_URL=<incoming webhook URL> to turn it on"
    )
    assert "SLACK_WEBHOOK_URL (alerts.webhook_url_env)" in lines[-1]  # and among the missing


def test_an_empty_webhook_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "")
    lines = status_lines(parse_settings({"alerts": {"webhook_url_env": "SLACK_WEBHOOK_URL"}}))
    assert any(line.startswith("alerts             OFF  environment variable") for line in lines)


def test_on_written_as_a_bare_yaml_key_is_read_as_on(tmp_path):
    path = tmp_path / "segment_sync.yaml"
    path.write_text("alerts:\n  webhook_url_env: SLACK_WEBHOOK_URL\n  on: [check_failure]\n")
    alerts = load_settings(path).alerts  # PyYAML reads the key `on` as True
    assert alerts.on == ["check_failure"]


def test_the_example_settings_file_keeps_alerts_off():
    example = Path(__file__).parents[2] / "data" / "segment_sync.example.yaml"
    assert load_settings(example).alerts.webhook_url_env is None
