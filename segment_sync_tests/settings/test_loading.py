"""Settings: every wrong value gives one error naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from segment_sync.settings import SettingsError, load_settings, parse_settings


def _problems(data: dict) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse_settings(data)
    return info.value.problems


def test_empty_file_gives_the_documented_defaults():
    settings = parse_settings(None)
    assert settings.general.customer_id_mapping == "customer_id"
    assert settings.outbound.region == "us"
    assert settings.outbound.endpoint == "https://api.segment.io"
    # Without a file, relative paths resolve against the current directory at load time.
    assert settings.logs.dir == str(Path.cwd().resolve() / "logs")
    assert settings.loyalty_store.url == f"sqlite:///{Path.cwd().resolve() / 'loyalty.db'}"


def test_relative_paths_resolve_against_the_settings_files_folder_from_any_directory(
    tmp_path, monkeypatch
):
    folder = tmp_path / "deploy"
    folder.mkdir()
    file = folder / "segment_sync.yaml"
    file.write_text(
        "loyalty_store: {url: 'sqlite:///stores/loyalty.db'}\n"
        "outbound: {state_url: 'sqlite:///state.db'}\n"
        "inbound: {buffer_url: 'sqlite:///../buffer.db'}\n"
        "logs: {dir: logs}\n"
    )
    seen = []
    for cwd in (tmp_path, folder, tmp_path / "elsewhere"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        s = load_settings(file.relative_to(tmp_path) if cwd == tmp_path else file)
        seen.append((s.loyalty_store.url, s.outbound.state_url, s.inbound.buffer_url, s.logs.dir))
    base = folder.resolve()
    assert (
        seen
        == [
            (
                f"sqlite:///{base / 'stores/loyalty.db'}",
                f"sqlite:///{base / 'state.db'}",
                f"sqlite:///{base.parent / 'buffer.db'}",
                str(base / "logs"),
            )
        ]
        * 3
    )


def test_absolute_and_postgresql_urls_are_kept_as_written(tmp_path):
    settings = parse_settings(
        {
            "loyalty_store": {"url": "postgresql://sync@db.example:5433/loyalty"},
            "outbound": {"state_url": f"sqlite:///{tmp_path}/state.db"},
            "logs": {"dir": str(tmp_path / "logs")},
        },
        base=tmp_path / "ignored",
    )
    assert settings.loyalty_store.url == "postgresql://sync@db.example:5433/loyalty"
    assert settings.outbound.state_url == f"sqlite:///{tmp_path}/state.db"
    assert settings.logs.dir == str(tmp_path / "logs")


def test_eu_region_uses_the_eu_endpoint():
    assert parse_settings({"outbound": {"region": "eu"}}).outbound.endpoint == (
        "https://events.eu1.segmentapis.com"
    )


def test_base_url_overrides_the_region_endpoint():
    settings = parse_settings({"outbound": {"base_url": "http://127.0.0.1:8701/"}})
    assert settings.outbound.endpoint == "http://127.0.0.1:8701"


@pytest.mark.parametrize(
    ("data", "key", "fix"),
    [
        (
            {"general": {"customer_id_mapping": "email"}},
            "general.customer_id_mapping",
            "'customer_id' or 'external_customer_id'",
        ),
        ({"loyalty_store": {"url": "mysql://x"}}, "loyalty_store.url", "sqlite:///"),
        ({"outbound": {"region": "asia"}}, "outbound.region", "'us' or 'eu'"),
        (
            {"outbound": {"write_key_env": "not a name"}},
            "outbound.write_key_env",
            "NAME of an environment variable",
        ),
        ({"outbound": {"base_url": "api.segment.io"}}, "outbound.base_url", "http(s) URL"),
        ({"outbound": {"event_sync": "point_add"}}, "outbound.event_sync", "YAML list"),
        ({"outbound": {"event_sync": [""]}}, "outbound.event_sync", "non-empty name"),
        ({"outbound": {"customer_fields_sync": 3}}, "outbound.customer_fields_sync", "YAML list"),
        ({"outbound": {"state_url": "redis://x"}}, "outbound.state_url", "sqlite:///"),
        ({"outbound": {"chunk_size": 0}}, "outbound.chunk_size", "raise it"),
        ({"outbound": {"max_in_flight": "many"}}, "outbound.max_in_flight", "whole number"),
        ({"logs": {"dir": 5}}, "logs.dir", "use a string"),
        ({"logs": {"retention_days": 0}}, "logs.retention_days", "raise it"),
        ({"outbund": {}}, "outbund", "check its spelling"),
        ({"outbound": {"regoin": "us"}}, "outbound.regoin", "check its spelling"),
    ],
)
def test_each_wrong_value_names_its_key_and_the_fix(data, key, fix):
    problems = _problems(data)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key}:")
    assert fix in problems[0]


def test_all_problems_are_reported_at_once():
    assert len(_problems({"outbound": {"region": "asia", "chunk_size": -1}})) == 2


def test_a_secret_pasted_into_an_env_name_key_is_not_echoed():
    secret = "sk_live_abcdef 123"
    problems = _problems({"outbound": {"write_key_env": secret}})
    assert secret not in " ".join(problems)


def test_missing_write_key_env_var_names_the_variable(monkeypatch):
    monkeypatch.delenv("SEGMENT_SYNC_TEST_KEY", raising=False)
    settings = parse_settings({"outbound": {"write_key_env": "SEGMENT_SYNC_TEST_KEY"}})
    with pytest.raises(SettingsError, match="SEGMENT_SYNC_TEST_KEY is not set"):
        settings.write_key()


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(SettingsError, match="segment_sync.example.yaml"):
        load_settings(tmp_path / "absent.yaml")


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("outbound: [unclosed")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(path)


def test_settings_path_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text("outbound:\n  region: eu\n")
    monkeypatch.setenv("SEGMENT_SYNC_SETTINGS", str(path))
    assert load_settings().outbound.region == "eu"


def test_the_shipped_example_settings_are_valid():
    from pathlib import Path

    example = Path(__file__).parents[2] / "data" / "segment_sync.example.yaml"
    assert load_settings(example).outbound.base_url == "http://127.0.0.1:8701"


def _mapping(**changes) -> dict:
    return {
        "name": "Orders",
        "action": "loyalty_event",
        "fields": {"action": {"@literal": "checkout"}},
        **changes,
    }


def test_no_mapping_is_active_unless_the_settings_list_one():
    assert parse_settings({}).inbound.active_mappings() == []
    assert parse_settings({"inbound": {"mappings": None}}).inbound.active_mappings() == []


def test_the_example_settings_list_the_manuals_two_actions_ready_made():
    example = load_settings(Path(__file__).parents[2] / "data" / "segment_sync.example.yaml")
    mappings = example.inbound.active_mappings()
    assert [(m.action, m.enabled) for m in mappings] == [
        ("loyalty_event", True),
        ("profile_update", True),
    ]


def test_a_mapping_without_trigger_gets_its_actions_default_trigger():
    (mapping,) = parse_settings({"inbound": {"mappings": [_mapping()]}}).inbound.active_mappings()
    assert mapping.trigger == 'type = "track"'


def test_loyalty_event_mapping_without_action_is_refused_naming_mapping_and_field():
    problems = _problems({"inbound": {"mappings": [_mapping(fields={})]}})
    assert len(problems) == 1
    assert "Mapping 'Orders'" in problems[0] and "'action'" in problems[0]


def test_multi_accounts_without_account_mapping_is_refused():
    problems = _problems({"inbound": {"multi_accounts": True, "mappings": [_mapping()]}})
    assert any("'account'" in p and "multi-accounts" in p for p in problems)


def test_trigger_that_does_not_parse_is_refused_with_its_position():
    problems = _problems({"inbound": {"mappings": [_mapping(trigger='type = "track" and')]}})
    assert any("Mapping 'Orders'" in p and "'trigger'" in p and "column" in p for p in problems)


def test_duplicate_mapping_names_are_refused():
    problems = _problems({"inbound": {"mappings": [_mapping(), _mapping()]}})
    assert any("used twice" in p for p in problems)


def test_unknown_mapping_action_lists_the_valid_ones():
    problems = _problems({"inbound": {"mappings": [_mapping(action="points")]}})
    assert "'loyalty_event' or 'profile_update'" in problems[0]


def test_antavo_endpoint_follows_the_stack():
    assert (
        parse_settings({"inbound": {"stack": "st2"}}).inbound.endpoint
        == "https://api.st2.antavo.com"
    )


@pytest.mark.parametrize("written", ["Staging", " STAGING ", "staging"])
def test_the_manuals_stack_example_staging_is_accepted_in_any_case(written):
    inbound = parse_settings({"inbound": {"stack": written}}).inbound
    assert inbound.stack == "staging"
    assert inbound.endpoint == "https://api.staging.antavo.com"


def test_a_stack_with_a_dot_is_refused_naming_what_a_stack_is():
    problems = _problems({"inbound": {"stack": "st2.antavo.com"}})
    assert "inbound.stack" in problems[0] and "'Your API Region'" in problems[0]


@pytest.mark.parametrize(
    "pasted",
    [
        "wk_live_9fK2xQ7pLm3Zt8Rb",  # lower case: a key, not a variable name
        "AB12CD34EF56GH78IJ90KL",  # upper case but a random run of letters and digits
        "SEGMENT_" + "X" * 60,  # longer than any sensible name
    ],
)
def test_a_value_in_an_env_key_that_looks_like_the_secret_is_refused_unechoed(pasted):
    problems = _problems({"inbound": {"api_secret_env": pasted}})
    assert len(problems) == 1
    assert problems[0].startswith("inbound.api_secret_env: this looks like the secret itself")
    assert pasted not in problems[0]


def test_a_password_in_a_bad_database_url_is_masked_in_the_error():
    problems = _problems({"loyalty_store": {"url": "mysql://sync:hunter2-pw@db/x"}})
    assert "loyalty_store.url" in problems[0]
    assert "hunter2-pw" not in problems[0] and "[REDACTED]" in problems[0]


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport", "http://127.0.0.1:99999"])
def test_a_base_url_with_a_bad_port_is_refused_at_load(url):
    problems = _problems({"outbound": {"base_url": url}})
    assert problems[0].startswith("outbound.base_url:") and "port must be a number" in problems[0]


def test_a_settings_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    file = tmp_path / "settings.yaml"
    file.write_bytes("general: {}\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(SettingsError, match="not UTF-8 text .*save the file as UTF-8"):
        load_settings(file)


def test_a_settings_path_that_is_a_folder_is_one_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="is a folder; pass the settings FILE"):
        load_settings(tmp_path)


def test_a_yaml_error_names_the_file_and_the_place_not_a_unicode_string(tmp_path):
    file = tmp_path / "settings.yaml"
    file.write_text("outbound: [\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(file)
    assert f"{file}: not valid YAML at line 2, column 1: " in str(raised.value)
    assert "<unicode string>" not in str(raised.value)


def test_a_missing_file_given_by_settings_does_not_suggest_passing_settings(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_path / "absent.yaml")
    assert "given by --settings" in str(raised.value)
    assert "or pass --settings" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8704", "http://127.0.0.1:8704/{region}/{region}"]
)
def test_the_public_api_base_url_must_say_once_where_the_region_goes(url):
    problems = _problems({"outbound": {"public_api_base_url": url}})
    assert problems[0].startswith("outbound.public_api_base_url: must hold {region} once")


def test_the_public_api_token_is_a_secret_redacted_like_the_others(monkeypatch):
    monkeypatch.setenv("SEGMENT_PUBLIC_API_TOKEN", "sgp_token_value_0123456789")
    loaded = parse_settings({"outbound": {"public_api_token_env": "SEGMENT_PUBLIC_API_TOKEN"}})
    assert "SEGMENT_PUBLIC_API_TOKEN" in loaded.secret_env_names()
    assert "sgp_token_value_0123456789" in loaded.secrets()
    assert parse_settings({}).outbound.public_api_token_env is None  # optional: off by default
