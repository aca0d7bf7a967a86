"""Escher signing as Antavo expects it, checked against a signer written here from the spec.

The project's signer and the Antavo stand-in share `segment_sync.antavo.escher`, so a wrong
parameter there (prefix, vendor key, scope, signed headers) would sign and verify happily on
loopback and fail only at the real Antavo. This test recomputes the header with nothing but
hashlib/hmac and the Escher specification (emarsys/escher), with Antavo's parameters written
out literally, and compares.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from segment_sync.antavo import escher

API_KEY = "segment_sync_test"
API_SECRET = "s3cr3t-0123456789"
STACK = "st2"
URL = "https://api.st2.antavo.com/events?debug=0"
BODY = b'{"customer":"c-1","action":"purchase","data":{"total":12.5}}'
NOW = datetime(2026, 12, 3, 7, 8, 9, tzinfo=UTC)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def independent_authorization() -> tuple[str, str]:
    """(Date, Authorization) for BODY posted to URL at NOW, straight from the Escher spec."""
    date_header = "Thu, 03 Dec 2026 07:08:09 GMT"
    long_date, short_date = "20261203T070809Z", "20261203"
    scope = "st2/api/antavo_request"
    canonical = "\n".join(
        [
            "POST",
            "/events",
            "debug=0",
            f"date:{date_header}\nhost:api.st2.antavo.com",
            "",
            "date;host",
            hashlib.sha256(BODY).hexdigest(),
        ]
    )
    string_to_sign = "\n".join(
        [
            "ANTAVO-HMAC-SHA256",
            long_date,
            f"{short_date}/{scope}",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"ANTAVO{API_SECRET}".encode(), short_date)
    for part in scope.split("/"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"ANTAVO-HMAC-SHA256 Credential={API_KEY}/{short_date}/{scope}, "
        f"SignedHeaders=date;host, Signature={signature}"
    )
    return date_header, authorization


def test_the_signature_matches_one_computed_independently_from_the_escher_spec() -> None:
    headers = escher.sign_request(API_KEY, API_SECRET, STACK, "POST", URL, BODY, now=NOW)
    date_header, authorization = independent_authorization()
    assert headers["Host"] == "api.st2.antavo.com"
    assert headers["Date"] == date_header
    assert headers["Authorization"] == authorization


def test_the_stand_in_verifier_accepts_the_independent_signature_and_refuses_a_changed_body() -> (
    None
):
    date_header, authorization = independent_authorization()
    headers = [
        ("Host", "api.st2.antavo.com"),
        ("Date", date_header),
        ("Authorization", authorization),
    ]
    credentials = {API_KEY: API_SECRET}
    signed_by = escher.verify_request(
        "POST", "/events?debug=0", headers, BODY, credentials, STACK, now=NOW
    )
    assert signed_by == API_KEY
    with pytest.raises(escher.EscherAuthError, match="signature"):
        escher.verify_request(
            "POST", "/events?debug=0", headers, BODY + b" ", credentials, STACK, now=NOW
        )


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("POST", URL, BODY),
        ("POST", "http://127.0.0.1:8080/events/bulk", b'{"events":[' + BODY + b"]}"),
        ("POST", "https://u:p%40ss@api.st2.antavo.com/a/../events", "árvíztűrő €".encode()),
        ("POST", "https://api.st2.antavo.com//x/./events?b=2&a=1&c=%20d", b""),
        ("GET", "https://api.st2.antavo.com", b""),
        ("get", "https://api.st2.antavo.com/customers/c%2F1?x=a b", b""),
    ],
)
def test_the_signer_signs_as_escherauth_does(method: str, url: str, body: bytes) -> None:
    signer = escher.Signer(API_KEY, API_SECRET, STACK)
    for now in (NOW, datetime(2027, 1, 1, 0, 0, 0, 999, tzinfo=UTC), NOW):
        expected = escher.sign_request(API_KEY, API_SECRET, STACK, method, url, body, now=now)
        assert signer.headers(method, url, body, now=now) == expected
        assert signer.headers(method, url, body, now=now) == expected  # from its caches


def test_the_signer_follows_the_clock_across_seconds_and_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = escher.Signer(API_KEY, API_SECRET, STACK)
    for when in (NOW, NOW.replace(second=10), NOW.replace(day=4), NOW.replace(day=4)):
        monkeypatch.setattr(escher.time, "time", when.timestamp)
        expected = escher.sign_request(API_KEY, API_SECRET, STACK, "POST", URL, BODY, now=when)
        assert signer.headers("POST", URL, BODY) == expected


def test_the_signer_refuses_what_escherauth_refuses_without_the_secret() -> None:
    with pytest.raises(ValueError, match="cannot sign") as raised:
        escher.Signer(API_KEY, API_SECRET, STACK).headers("BREW", URL, BODY)
    assert API_SECRET not in str(raised.value)
