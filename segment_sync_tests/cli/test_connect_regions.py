"""`settings check --connect` with several destinations: each destination's region is proven
on its own, and a wrong one is named with the setting to fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.standins.segment_public_api import SegmentPublicApiStandin, workspace_with
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.cli.test_connect_check import assert_no_secret, block
from segment_sync_tests.outbound.regions import EU_KEY, US_KEY, routed_settings, two_regions

TOKENS = {"eu": "sgp_eu_token_0123456789abcdef", "us": "sgp_us_token_0123456789abcdef"}


@pytest.fixture
def checked(write_settings, monkeypatch) -> Iterator:
    """Runs --connect on two destinations; `workspaces(eu=..., us=...)` says where each
    destination's key really lives."""
    monkeypatch.delenv("ANTAVO_API_KEY")  # inbound off: only Segment is asked
    public = SegmentPublicApiStandin([])
    with two_regions(monkeypatch) as regions, serve_in_thread(public.app) as api_url:

        def run(eu: str, us: str):
            public.workspaces[:] = [
                workspace_with(eu, TOKENS["eu"], [EU_KEY], name="Loyalty EU"),
                workspace_with(us, TOKENS["us"], [US_KEY], name="Loyalty US"),
            ]
            path = routed_settings(write_settings, regions)
            data = yaml.safe_load(path.read_text())
            data["outbound"]["public_api_base_url"] = f"{api_url}/{{region}}"
            for destination in data["outbound"]["destinations"]:
                env = f"SEGMENT_PUBLIC_API_TOKEN_{destination['name'].upper()}"
                destination["public_api_token_env"] = env
                monkeypatch.setenv(env, TOKENS[destination["name"]])
            path.write_text(yaml.safe_dump(data))
            return CliRunner().invoke(main, ["settings", "check", "--connect"])

        yield run


def test_every_destinations_region_is_proven(checked):
    result = checked(eu="eu", us="us")
    assert result.exit_code == 0, result.output
    assert block(result.output, "Segment region (eu)")[0].startswith("[ok] Segment region (eu):")
    assert block(result.output, "Segment region (us)")[0].startswith("[ok] Segment region (us):")
    assert_no_secret(result.output)
    for token in TOKENS.values():
        assert token not in result.output


def test_a_destination_whose_key_lives_in_the_other_region_fails_naming_its_setting(checked):
    result = checked(eu="us", us="us")  # the EU destination's key belongs to a US workspace
    assert result.exit_code == 1, result.output
    [line] = block(result.output, "Segment region (eu)")
    assert line.startswith("[FAILED] Segment region (eu): outbound.destinations[eu].region is eu")
    assert "whose region is us" in line
    assert line.endswith("Fix: set outbound.destinations[eu].region: us in the settings file")
    assert block(result.output, "Segment region (us)")[0].startswith("[ok]")
    assert "--connect proved wrong: Segment region (eu)" in result.output
