"""A password in any URL setting never shows: settings give URLs as SecretUrl, whose text masks it.

The URL settings are found by name (every key ending in `url`), so a URL setting added later
without the SecretUrl type fails here.
"""

from __future__ import annotations

from urllib.parse import unquote

import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync import redaction
from segment_sync.cli import main
from segment_sync.db import database_identity, sqlalchemy_url
from segment_sync.settings import Settings, SettingsError, parse_settings
from segment_sync_tests.url_passwords import Password, passwords, with_password

# An example URL of each kind; a new URL setting needs a line here (the first test says so).
DB_URL = "postgresql://db.example:5432/loyalty"
HTTP_URL = "http://127.0.0.1:8701"
EXAMPLES = {"url": DB_URL, "state_url": DB_URL, "buffer_url": DB_URL, "base_url": HTTP_URL}
EXAMPLES["ui_base_url"] = HTTP_URL
EXAMPLES["public_api_base_url"] = "http://127.0.0.1:8704/{region}"  # the Public API stand-in


def _url_keys(model: type = Settings, prefix: str = "") -> list[str]:
    """Every setting whose key ends in `url` (the `*_url_env` names are not URLs)."""
    keys = []
    for name, field in model.model_fields.items():
        nested = field.annotation if isinstance(field.annotation, type) else None
        if nested is not None and hasattr(nested, "model_fields"):
            keys += _url_keys(nested, f"{prefix}{name}.")
        elif name.endswith("url"):
            keys.append(f"{prefix}{name}")
    return keys


URL_KEYS = _url_keys()


def _settings_with(urls: dict[str, str]) -> dict:
    data: dict = {}
    for key, url in urls.items():
        section, name = key.split(".")
        data.setdefault(section, {})[name] = url
    return data


def _urls(password: Password, db_password: Password) -> dict[str, str]:
    """Every URL setting holding a password (database URLs may hold '/', '?', '#' raw)."""
    urls = {}
    for key in URL_KEYS:
        example = EXAMPLES[key.split(".")[-1]]
        urls[key] = with_password(example, "sync", db_password if example == DB_URL else password)
    return urls


def test_every_url_setting_is_a_secret_url_found_by_the_redactors():
    assert {"loyalty_store.url", "outbound.base_url", "alerts.ui_base_url"} <= set(URL_KEYS)
    urls = {key: with_password(EXAMPLES[key.split(".")[-1]], "u", _fixed()) for key in URL_KEYS}
    loaded = parse_settings(_settings_with(urls))
    assert set(loaded.url_settings()) == set(URL_KEYS)
    assert all(isinstance(url, redaction.SecretUrl) for url in loaded.url_settings().values())
    assert _fixed().written in loaded.secrets()


def _fixed() -> Password:
    return Password("PWa1@b:cPWz2", "PWa1", "PWz2")


@settings(max_examples=40)
@given(password=passwords(for_http=True), db_password=passwords(for_http=False))
def test_no_url_password_shows_in_the_settings_or_their_text(password, db_password):
    urls = _urls(password, db_password)
    loaded = parse_settings(_settings_with(urls))
    shown = "\n".join(
        [repr(loaded), str(loaded), loaded.model_dump_json(), f"{loaded.outbound.endpoint}"]
        + [f"{url} {url!r} {url.without_password()}" for url in loaded.url_settings().values()]
    )
    for p in (password, db_password):
        assert not p.leaks_in(shown), shown
    assert {k: u.reveal() for k, u in loaded.url_settings().items()} == urls


@settings(max_examples=25)
@given(password=passwords(for_http=True), db_password=passwords(for_http=False))
def test_settings_check_shows_every_url_setting_without_its_password(
    password, db_password, tmp_path_factory
):
    file = tmp_path_factory.mktemp("check") / "settings.yaml"
    file.write_text(yaml.safe_dump(_settings_with(_urls(password, db_password))))
    result = CliRunner(env={"SEGMENT_WRITE_KEY": "wk-test-0123456789"}).invoke(
        main, ["settings", "check", "--settings", str(file)]
    )
    assert result.exit_code == 0, result.output
    assert "endpoint http://sync:[REDACTED]@127.0.0.1:8701" in result.output
    for p in (password, db_password):
        assert not p.leaks_in(result.output), result.output


@settings(max_examples=40)
@given(password=passwords(for_http=True), key=st.sampled_from(URL_KEYS))
def test_a_refused_url_setting_is_named_without_its_password(password, key):
    if EXAMPLES[key.split(".")[-1]] == DB_URL:
        url = with_password("mysql://db.example/loyalty", "sync", password)
    else:  # a raw '/' in an http password ends the host: httpx would read another URL
        url = with_password(HTTP_URL, "sync", password).replace("@127", "/x@127", 1)
    try:
        parse_settings(_settings_with({key: url}))
    except SettingsError as exc:
        assert str(exc).count(key) == 1 and not password.leaks_in(str(exc)), str(exc)
    else:
        raise AssertionError(f"{key} accepted {url!r}")


@settings(max_examples=60)
@given(db_password=passwords(for_http=False))
def test_the_database_driver_reads_the_password_the_settings_mean(db_password):
    """A password holding '@' reaches the driver whole, never as part of the host (which
    drivers quote in their errors)."""
    url = with_password("postgresql://db.example:5433/loyalty", "sync", db_password)
    parsed = sa.engine.make_url(sqlalchemy_url(url))
    assert (parsed.host, parsed.port, parsed.database) == ("db.example", 5433, "loyalty")
    assert parsed.username == "sync" and parsed.password == unquote(db_password.written)
    assert not db_password.leaks_in(database_identity(url))
