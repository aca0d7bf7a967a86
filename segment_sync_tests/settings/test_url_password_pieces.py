"""No piece of a URL password shows: a parser (urllib, httpx, redis-py, SQLAlchemy) may cut a
password holding a raw '?', '#', '/', '@' or ':' at that delimiter and quote a piece of it as
the host, port or password in its error. The settings' messages and the redactors of parsers'
errors about a URL mask each such piece of 4 characters or more (shorter ones are not masked);
`settings.secrets()`, which the log writers mask in every row, holds whole passwords only.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.connection import parse_url

from segment_sync.cli import main
from segment_sync.redaction import Redactor, SecretUrl
from segment_sync.settings import SettingsError, parse_settings

DELIMITERS = "?#/@:"
# Letters rare in English and absent from the messages, so a piece never shows by chance.
_RARE = "jkqvwxz"


def pieces(password: str) -> set[str]:
    """Every run of whole segments of `password` between delimiters, of 4 characters or more:
    what a parser cutting it at any delimiters could take for a password, host or port."""
    parts = re.split(f"([{re.escape(DELIMITERS)}])", password)
    segments = len(parts) // 2 + 1
    runs = {"".join(parts[2 * i : 2 * j + 1]) for i in range(segments) for j in range(i, segments)}
    return {run for run in runs if len(run) >= 4}


def _passwords(alphabet: str) -> st.SearchStrategy[str]:
    """Passwords of 2 to 6 segments joined by raw delimiters."""
    segment = st.text(alphabet, min_size=1, max_size=8)
    return st.lists(
        st.tuples(st.sampled_from(DELIMITERS), segment), min_size=1, max_size=5
    ).flatmap(lambda rest: segment.map(lambda first: first + "".join(d + s for d, s in rest)))


def _shown(password: str, text: str) -> list[str]:
    return sorted(piece for piece in pieces(password) if piece in text)


# Each URL setting, with the URL it takes (the password goes after `u:`).
HTTP = "http://u:{}@127.0.0.1:8701"
URL_SETTINGS = {
    "outbound.base_url": HTTP,
    "inbound.base_url": HTTP,
    "alerts.ui_base_url": HTTP,
    "outbound.public_api_base_url": "http://u:{}@127.0.0.1:8704/{{region}}",
    "loyalty_store.url": "postgresql://u:{}@127.0.0.1:5432/loyalty",
    "outbound.state_url": "postgresql://u:{}@127.0.0.1:5432/state",
    "inbound.buffer_url": "postgresql://u:{}@127.0.0.1:5432/buffer",
}


def test_pieces_are_the_runs_of_whole_segments():
    assert pieces("abcd?efgh/ij") == {"abcd", "efgh", "abcd?efgh", "efgh/ij", "abcd?efgh/ij"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=_passwords(_RARE), key=st.sampled_from(sorted(URL_SETTINGS)))
def test_settings_check_shows_no_piece_of_a_url_password(password, key, tmp_path_factory):
    section, name = key.split(".")
    url = URL_SETTINGS[key].format(password)
    file = tmp_path_factory.mktemp("pieces") / "settings.yaml"
    file.write_text(yaml.safe_dump({section: {name: url}}))

    result = CliRunner(env={"SEGMENT_WRITE_KEY": "wk-test-0123456789"}).invoke(
        main, ["settings", "check", "--settings", str(file)]
    )

    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 1:
        assert key in result.output, result.output
    assert not _shown(password, result.output), result.output


@settings(max_examples=60, deadline=None)
@given(password=_passwords(_RARE), key=st.sampled_from(sorted(URL_SETTINGS)))
def test_a_refused_url_setting_quotes_no_piece_of_its_password(password, key):
    section, name = key.split(".")
    url = URL_SETTINGS[key].format(password)
    try:
        parse_settings({section: {name: url}})
    except SettingsError as exc:
        assert key in str(exc) and not _shown(password, str(exc)), str(exc)


def _parser_texts(url: str) -> list[str]:
    """What urllib, httpx, redis-py and SQLAlchemy say of `url`: their errors, and the host,
    port and path they read (which drivers quote in their own errors)."""
    texts: list[str] = []
    readers = [
        lambda: (lambda p: [p.netloc, p.hostname, p.port, p.path, p.query, p.fragment])(
            urlsplit(url)
        ),
        lambda: (lambda u: [u.host, u.port, u.path, u.query])(httpx.URL(url)),
        lambda: list(parse_url("redis" + url[url.index("://") :]).values()),
        lambda: (lambda u: [u.host, u.port, u.database])(sa.engine.make_url(url)),
    ]
    for read in readers:
        try:
            texts += [str(part) for part in read()]
        except Exception as exc:  # noqa: BLE001 - every parser's error is what is checked
            texts.append(f"{type(exc).__name__}: {exc}")
    return texts


@settings(max_examples=100, deadline=None)
@given(password=_passwords(_RARE + "0123456789"))
def test_a_url_s_passwords_and_pieces_mask_every_piece_a_url_parser_quotes(password):
    """What the error paths mask a parser's words about a URL with (settings messages, the
    rate limiter, database engines, HTTP clients): whatever any parser makes of it."""
    urls = [
        f"postgresql://u:{password}@127.0.0.1:5432/loyalty",
        f"redis://u:{password}@127.0.0.1:6379/0",
        f"https://u:{password}@hooks.example:8443/services/x",
        f"amqp://u:{password}@127.0.0.1:5672//",
    ]
    for url in urls:
        redactor = Redactor(SecretUrl(url).passwords_and_pieces())
        for text in _parser_texts(url):
            assert not _shown(password, redactor.text(text) or ""), (url, text)


def test_the_settings_secrets_are_whole_passwords_so_logged_data_keeps_their_pieces(monkeypatch):
    """The log writers mask `settings.secrets()` in every row: a piece of a password there
    (`2026` of `Winter@2026`) would mask every date and id holding it (review)."""
    monkeypatch.setenv("ANTAVO_RATE_LIMIT_URL", "redis://u:Blue%3Abeef@127.0.0.1:6379/0")
    data = {
        "loyalty_store": {"url": "postgresql://u:Winter@2026@127.0.0.1:5432/loyalty"},
        "inbound": {"rate_limiter": "redis", "rate_limiter_url_env": "ANTAVO_RATE_LIMIT_URL"},
    }
    redactor = Redactor(parse_settings(data).secrets())
    row = '{"timestamp":"2026-12-07","message_id":"m-Winter-beef","note":"Blue cheese"}'
    assert redactor.text(row) == row
    assert redactor.text("password Winter@2026 or Blue:beef") == (
        "password [REDACTED] or [REDACTED]"
    )


def test_a_database_url_without_its_host_never_shows_what_may_be_its_password():
    """`postgresql://user:Secret` with the '@host' left out reads as host `user`, port
    `Secret`: nothing to mask, so the refusal shows no value (review)."""
    try:
        parse_settings({"loyalty_store": {"url": "postgresql://loyalty:Sup3rSecret"}})
    except SettingsError as exc:
        assert "loyalty_store.url" in str(exc) and "Sup3rSecret" not in str(exc), str(exc)
    else:
        raise AssertionError("a database URL with a port that is no number was accepted")
