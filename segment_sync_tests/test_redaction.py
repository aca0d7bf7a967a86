"""Secrets never leave in text: known secret values and URL passwords are replaced."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.redaction import (
    REDACTED,
    Redactor,
    SecretUrl,
    mask_url_passwords,
    password_pieces,
)


def test_a_database_url_password_is_masked_and_the_rest_kept():
    text = "cannot connect to postgresql://sync:hunter2-xyz@db.internal:5432/loyalty"
    assert mask_url_passwords(text) == (
        f"cannot connect to postgresql://sync:{REDACTED}@db.internal:5432/loyalty"
    )


def test_a_password_holding_an_at_sign_is_masked_whole():
    masked = mask_url_passwords("postgresql://sync:p@ss@db:5432/x")
    assert masked == f"postgresql://sync:{REDACTED}@db:5432/x"
    assert "ss" not in masked.split("@", 1)[0]


def test_urls_without_a_password_are_unchanged():
    for text in ("sqlite:///data/loyalty.db", "postgresql://sync@db/x", "http://h/a@b"):
        assert mask_url_passwords(text) == text


def test_the_redactor_masks_known_secrets_and_url_passwords_together():
    redactor = Redactor(["wk_live_abcdef"])
    text = redactor.text("key wk_live_abcdef via postgresql://u:pw12345@h/db")
    assert text == f"key {REDACTED} via postgresql://u:{REDACTED}@h/db"


def test_a_url_inside_a_json_body_never_swallows_the_next_field():
    body = '{"a":"http://x:8080","b":"c@d","db":"postgresql://u:pw@h/x"}'
    assert mask_url_passwords(body) == (
        '{"a":"http://x:8080","b":"c@d","db":"postgresql://u:' + REDACTED + '@h/x"}'
    )


def test_a_request_body_in_bytes_is_redacted_as_its_text_would_be():
    redactor = Redactor(["wk_live_abcdef", "wk_live"])
    for text in (
        '{"k":"wk_live_abcdef","n":"Zoë wk_live"}',
        '{"db":"postgresql://u:pw12345@h/x","e":"ä@b"}',
        '{"plain":"nothing to hide"}',
    ):
        assert redactor.body(text.encode()) == redactor.text(text).encode()


def test_a_clean_request_body_is_returned_as_is_without_a_copy():
    body = b'{"batch":[{"type":"track"}]}'
    assert Redactor(["wk_live_abcdef"]).body(body) is body


def test_a_secret_json_escaped_in_a_body_or_a_text_is_masked():
    """A body holds `a\\"b` for the secret `a"b`: the raw bytes are not in it."""
    secret = 'K3y"\\\x01/é'
    body = orjson.dumps({"note": secret})
    redactor = Redactor([secret])
    assert secret.encode() not in body  # only the escaped form is there
    assert redactor.body(body) == orjson.dumps({"note": REDACTED})
    assert redactor.text(json.dumps({"k": secret})) == f'{{"k": "{REDACTED}"}}'
    assert not redactor.clean_bytes(body) and redactor.clean_bytes(b'{"note": "plain"}')


def test_a_secret_with_a_lone_surrogate_is_kept_and_never_raises():
    """os.environ decodes bytes that are not UTF-8 as lone surrogates (surrogateescape)."""
    redactor = Redactor(["ab\udc80cd-key"])
    assert redactor.body(b'{"a":"plain"}') == b'{"a":"plain"}'
    assert redactor.text("x ab\udc80cd-key y") == f"x {REDACTED} y"


def test_a_secret_written_as_php_or_upper_case_json_escapes_it_is_masked() -> None:
    """Antavo is PHP: json_encode writes '/' as '\\/'; others write \\u00E4 in upper case."""
    redactor = Redactor(["ab/cd+ef==ä"])
    for written in ("ab\\/cd+ef==\\u00e4", "ab\\/cd+ef==\\u00E4", "ab/cd+ef==\\u00E4"):
        assert redactor.text(f'{{"k":"{written}"}}') == '{"k":"[REDACTED]"}', written


def test_an_email_beside_a_page_url_is_clean_and_a_url_password_is_not() -> None:
    """'://' and '@' apart are no URL password: such a column needs no value-by-value pass."""
    redactor = Redactor(["the-secret"])
    text = "mail a@example.com, see https://example.com/page"
    assert redactor.clean(text) and redactor.clean_bytes(text.encode())
    assert redactor.text(text) == text
    with_password = "db postgresql://user:pw@host/db"
    assert not redactor.clean(with_password) and not redactor.clean_bytes(with_password.encode())


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:/@ .\"',\\xs3cret-é")), max_size=60))
def test_text_called_clean_is_left_unchanged(text: str) -> None:
    """`clean` may say 'no' too often (then the value is redacted), never 'yes' wrongly."""
    redactor = Redactor(["s3cret"])
    if redactor.clean(text):
        assert redactor.text(text) == text
    if redactor.clean_bytes(text.encode()):
        assert redactor.text(text) == text


def test_a_url_password_cut_by_a_parser_is_masked_piece_by_piece():
    """urllib and httpx end the host at a raw '?', '#' or '/' and read the password's start as
    the port; each piece a parser may quote is one of the URL's passwords, shorter ones not."""
    url = SecretUrl("redis://u:PWHEADsecret/x?rest@127.0.0.1:6379/0")
    assert url.passwords() == ["PWHEADsecret/x?rest"]  # whole: what the log writers mask
    assert url.passwords_and_pieces()[:1] == ["PWHEADsecret/x?rest"]  # the whole first
    assert set(url.passwords_and_pieces()) == {
        "PWHEADsecret/x?rest",
        "PWHEADsecret",
        "PWHEADsecret/x",
        "x?rest",
        "rest",
    }
    redactor = Redactor(url.passwords_and_pieces())
    error = "ValueError: Port could not be cast to integer value as 'PWHEADsecret'"
    assert (
        redactor.text(error)
        == f"ValueError: Port could not be cast to integer value as '{REDACTED}'"
    )
    assert SecretUrl("postgresql://u:plain-password@h/db").passwords() == ["plain-password"]


def test_a_long_value_with_many_delimiters_is_not_cut_into_thousands_of_pieces():
    """A pasted document in a URL's password place: its pieces would be thousands of secrets,
    each searched for in every text (review: a 10 KB value took `settings check` 45 s)."""
    long_value = "abcd/" * 1000
    assert password_pieces(long_value) == []
    assert len(SecretUrl(f"redis://u:{long_value}@h").passwords_and_pieces()) <= 2
    assert password_pieces("abcd/efgh") == ["abcd", "efgh"]
