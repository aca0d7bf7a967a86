"""`logs outbound --destination` and the `Destination` filter field: one region's requests."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import routed_settings, two_regions
from segment_sync_tests.outbound.test_regions import seed


@pytest.fixture
def routed_logs(write_settings, monkeypatch):
    with two_regions(monkeypatch) as regions:
        settings = load_settings(routed_settings(write_settings, regions))
        seed(settings, {"anna": "DE", "bob": "US", "joe": "US"}, events_each=1)
        assert run_manual_outbound(settings, "all", "run-logs", echo=lambda _: None)
        yield settings


def rows(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["logs", "outbound", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def customers(found: list[dict]) -> set[str]:
    return {c for row in found for c in row["customer_ids"]}


def test_destination_option_lists_only_that_destinations_requests(routed_logs):
    eu, us = rows("--destination", "eu"), rows("--destination", "us")
    assert eu and us
    assert {r["destination"] for r in eu} == {"eu"} and customers(eu) == {"anna"}
    assert {r["destination"] for r in us} == {"us"} and customers(us) == {"bob", "joe"}


def test_destination_is_a_filter_field_in_the_manuals_wording(routed_logs):
    found = rows("--filter", "Destination is US and Event type is track")
    assert found and {(r["destination"], r["event_type"]) for r in found} == {("us", "track")}
    assert rows("--filter", "Destination is not in eu, us") == []


def test_resync_resends_each_customers_rows_to_their_own_destination(write_settings, monkeypatch):
    with two_regions(monkeypatch) as regions:
        settings = load_settings(routed_settings(write_settings, regions))
        seed(settings, {"anna": "DE", "bob": "US"}, events_each=2)
        assert run_manual_outbound(settings, "all", "run-first", echo=lambda _: None)
        regions.eu.reset()
        regions.us.reset()

        result = CliRunner().invoke(main, ["resync", "outbound", "--since", "1h"])

        assert result.exit_code == 0, result.output
        assert {m["userId"] for m in regions.eu.messages} == {"anna"}
        assert {m["userId"] for m in regions.us.messages} == {"bob"}
        assert len(regions.eu.messages) == len(regions.us.messages) == 3
        assert "resync events@eu: found" in result.output
