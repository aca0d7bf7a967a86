"""`settings check --connect`: what it proves against the stand-ins, what it cannot, and how it
says so. Real processes' contracts over loopback: the Tracking API, the Public API (both
regional hosts) and Antavo's signed REST API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.standins.segment_public_api import SegmentPublicApiStandin, workspace_with
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, EU_WRITE_KEY, WRITE_KEY

TOKEN_ENV = "SEGMENT_PUBLIC_API_TOKEN"
TOKEN = "sgp_public_api_token_0123456789abcdef"
PAGES_OF_OTHER_SOURCES = 450  # the Antavo source is on the third page of 200


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class PublicApi:
    """The Public API stand-in on loopback, its workspaces swappable per test."""

    def __init__(self, standin: SegmentPublicApiStandin, url: str) -> None:
        self.standin, self.template = standin, f"{url}/{{region}}"

    def workspace(self, region: str, write_keys=(WRITE_KEY,), **options) -> None:
        name = f"Loyalty {region.upper()}"
        self.standin.workspaces[:] = [
            workspace_with(region, TOKEN, write_keys, name=name, **options)
        ]


@pytest.fixture
def public_api(monkeypatch) -> Iterator[PublicApi]:
    standin = SegmentPublicApiStandin([])
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with serve_in_thread(standin.app) as url:
        yield PublicApi(standin, url)


@pytest.fixture
def connect(write_settings, segment_standin, antavo_standin, public_api):
    """Runs `settings check --connect` against the stand-ins; `outbound`/`inbound` override."""

    def run(token: bool = True, **outbound):
        values = {"base_url": segment_standin.url, **outbound}
        if token:
            values |= {
                "public_api_token_env": TOKEN_ENV,
                "public_api_base_url": public_api.template,
            }
        path = write_settings(outbound=values, inbound={"base_url": antavo_standin.url})
        return invoke("settings", "check", "--connect", "--settings", str(path))

    return run


def block(output: str, name: str) -> list[str]:
    """The lines of one check's result: its `[outcome] name:` line and those indented under it."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if f"] {name}: " in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


def assert_no_secret(output: str) -> None:
    for secret in (TOKEN, WRITE_KEY, EU_WRITE_KEY, ANTAVO_KEY, ANTAVO_SECRET):
        assert secret not in output


def test_a_matching_region_is_proven_through_the_public_api(connect, public_api):
    public_api.workspace("us", other_sources=PAGES_OF_OTHER_SOURCES)
    result = connect()
    assert result.exit_code == 0, result.output
    assert block(result.output, "Segment region") == [
        '[ok] Segment region: the write key in SEGMENT_WRITE_KEY belongs to source "Antavo" '
        '(antavo) of workspace "Loyalty US" (loyalty-us), whose region is us (its Public API '
        f"host {public_api.template.format(region='us')} serves it); outbound.region is us"
    ]
    pages = [r for r in public_api.standin.request_records() if r["path"] == "/us/sources"]
    assert len(pages) == 3 and {r["status"] for r in pages} == {200}
    assert_no_secret(result.output)


def test_a_mismatched_region_fails_naming_both_regions_and_the_fix(connect, public_api):
    public_api.workspace("eu")  # the key's source is in an eu workspace; the settings say us
    result = connect(region="us")
    assert result.exit_code == 1, result.output
    [line] = block(result.output, "Segment region")
    assert line.startswith("[FAILED] Segment region: outbound.region is us, but the write key")
    assert 'of workspace "Loyalty EU" (loyalty-eu), whose region is eu' in line
    assert line.endswith("Fix: set outbound.region: eu in the settings file")
    assert "Error: --connect proved wrong: Segment region (above)" in result.output
    asked = [(r["region"], r["status"]) for r in public_api.standin.request_records()]
    assert asked[:2] == [("us", 401), ("eu", 200)]  # us host refuses the token, eu serves it
    assert_no_secret(result.output)


def test_without_a_token_it_says_exactly_what_it_could_not_verify_and_how(connect):
    result = connect(token=False)
    assert result.exit_code == 0, result.output
    assert block(result.output, "Segment region") == [
        "[not verified] Segment region: Segment answers 200 to a write key it does not know and "
        "to a key of the other region, and drops their messages,",
        "  so no answer of its endpoint shows whether SEGMENT_WRITE_KEY holds the write key of a "
        "source in a us workspace. To verify it:",
        "  1. in Segment, open Connections > Sources and select the source whose write key "
        "SEGMENT_WRITE_KEY holds;",
        "  2. open its Debugger tab;",
        "  3. send something: `segment-sync run outbound` (or let the sensors run);",
        "  4. the events must appear in the Debugger within a minute. If none appear, the key "
        "or outbound.region (us) is wrong:",
        "     fix it and run again (progress belongs to the endpoint and the key, so a corrected "
        "destination starts from the first row).",
        "  Or let --connect verify it: set outbound.public_api_token_env to the name of a "
        "variable holding a Segment Public API token (Team and Business plans).",
    ]
    assert "write key accepted" not in result.output
    [endpoint] = block(result.output, "Segment endpoint")
    assert endpoint.startswith("[ok] Segment endpoint: ") and "proves neither" in endpoint


def test_a_key_of_the_other_region_without_a_token_is_not_reported_accepted(
    connect, monkeypatch, segment_standin
):
    """The stand-in answers 200 and drops, as Segment does: --connect must not call it fine."""
    monkeypatch.setenv("SEGMENT_WRITE_KEY", EU_WRITE_KEY)
    result = connect(token=False)
    assert result.exit_code == 0
    assert block(result.output, "Segment region")[0].startswith("[not verified] Segment region")
    assert segment_standin.accepted_message_ids() == []


def test_a_refused_token_fails_naming_the_variable_never_the_value(
    connect, public_api, monkeypatch
):
    public_api.workspace("us")
    monkeypatch.setenv(TOKEN_ENV, "sgp_a_token_segment_does_not_know_42")
    result = connect()
    assert result.exit_code == 1, result.output
    [line] = block(result.output, "Segment region")
    assert line.startswith(
        "[FAILED] Segment region: the Segment Public API refused the token in "
        "SEGMENT_PUBLIC_API_TOKEN (outbound.public_api_token_env): HTTP 401/401 at "
    )
    assert "sgp_a_token_segment_does_not_know_42" not in result.output
    assert_no_secret(result.output)


def test_an_unset_token_variable_fails_naming_it(connect, public_api, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    result = connect()
    assert result.exit_code == 1
    [line] = block(result.output, "Segment region")
    assert (
        "environment variable SEGMENT_PUBLIC_API_TOKEN (outbound.public_api_token_env) is "
        "not set" in line
    )


def test_a_write_key_in_no_source_of_the_workspace_is_named(connect, public_api):
    public_api.workspace("us", write_keys=("a-key-of-another-source",), other_sources=3)
    result = connect()
    assert result.exit_code == 1, result.output
    [line] = block(result.output, "Segment region")
    assert line == (
        "[FAILED] Segment region: the write key in SEGMENT_WRITE_KEY belongs to no source of "
        'workspace "Loyalty US" (loyalty-us) (region us, 4 sources), the workspace the token in '
        "SEGMENT_PUBLIC_API_TOKEN opens: check that SEGMENT_WRITE_KEY holds the Antavo source's "
        "write key, and that the token is one of that source's workspace"
    )


def test_a_token_without_source_admin_is_told_it_sees_no_write_keys(connect, public_api):
    public_api.workspace("us", source_admin=False)
    result = connect()
    assert result.exit_code == 1
    assert "sees no write keys" in block(result.output, "Segment region")[0]
    assert "Source Admin" in block(result.output, "Segment region")[0]


def test_an_unreachable_endpoint_fails(write_settings, monkeypatch):
    monkeypatch.delenv("ANTAVO_API_KEY")
    path = write_settings(outbound={"base_url": "http://127.0.0.1:9"})
    result = invoke("settings", "check", "--connect", "--settings", str(path))
    assert result.exit_code == 1
    assert block(result.output, "Segment endpoint")[0].startswith(
        "[FAILED] Segment endpoint: cannot reach http://127.0.0.1:9/v1/batch"
    )


def test_antavo_credentials_are_proven_by_a_signed_harmless_request(connect, antavo_standin):
    result = connect(token=False)
    assert result.exit_code == 0, result.output
    [line] = block(result.output, "Antavo")
    assert line == (
        f"[ok] Antavo: {antavo_standin.url} accepted the request signed with ANTAVO_API_KEY and "
        "ANTAVO_API_SECRET (inbound.api_key_env, inbound.api_secret_env) for stack test: GET "
        "/customers/segment-sync-connection-check answered 404 (the customer does not exist, "
        "as expected)"
    )
    assert antavo_standin.events == []  # nothing registered: the probe only reads
    assert antavo_standin.stats()["requests_by_status"] == {"404": 1}


def test_a_wrong_antavo_secret_fails_naming_the_variables_never_the_values(
    connect, antavo_standin, monkeypatch
):
    monkeypatch.setenv("ANTAVO_API_SECRET", "not-the-antavo-secret-at-all")
    result = connect(token=False)
    assert result.exit_code == 1, result.output
    [line] = block(result.output, "Antavo")
    assert line.startswith(
        f"[FAILED] Antavo: {antavo_standin.url} refused the request signed with ANTAVO_API_KEY "
        "and ANTAVO_API_SECRET (inbound.api_key_env, inbound.api_secret_env) (HTTP 401): check "
        "that they hold the API key and secret of stack test (inbound.stack)"
    )
    assert "not-the-antavo-secret-at-all" not in result.output
    assert "Error: --connect proved wrong: Antavo (above)" in result.output
    assert_no_secret(result.output)


def test_antavo_is_not_checked_when_inbound_has_no_credentials(connect, monkeypatch):
    monkeypatch.delenv("ANTAVO_API_SECRET")
    result = connect(token=False)
    assert result.exit_code == 0
    assert block(result.output, "Antavo") == [
        "[not checked] Antavo: inbound is off: environment variable ANTAVO_API_SECRET "
        "(inbound.api_secret_env) is not set"
    ]
