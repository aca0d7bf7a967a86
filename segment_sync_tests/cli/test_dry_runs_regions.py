"""`run outbound --dry-run` with several destinations: what each would get, nothing sent."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import EU_KEY, US_KEY, routed_settings, two_regions
from segment_sync_tests.outbound.test_regions import seed


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def would_send(output: str) -> dict[str, int]:
    """`events@eu` -> messages it would send, from each stream line of the dry run."""
    found = re.findall(r"^(\S+@\S+) \(\w+\): .* would send (\d+) message", output, re.M)
    return {label: int(n) for label, n in found}


def test_a_routed_dry_run_reports_each_destinations_messages_and_sends_nothing(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    seed(load_settings(path), {"anna": "DE", "marc": "FR", "bob": "US"}, events_each=2)

    result = invoke("run", "outbound", "--dry-run", "--settings", str(path))

    assert result.exit_code == 0, result.output
    assert would_send(result.output) == {
        "events@eu": 4, "events@us": 2, "profiles@eu": 2, "profiles@us": 1,
    }  # fmt: skip
    assert re.search(r"^eu +6 +6 +0 ", result.output, re.M)  # rows, messages, would fail
    assert re.search(r"^us +3 +3 +0 ", result.output, re.M)
    assert regions.eu.stats()["requests"] == regions.us.stats()["requests"] == 0
    assert EU_KEY not in result.output and US_KEY not in result.output


def test_a_routed_dry_run_counts_what_the_real_run_then_delivers_to_each_destination(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    seed(load_settings(path), {"anna": "DE", "bob": "US", "joe": "US"}, events_each=3)

    dry = would_send(invoke("run", "outbound", "--dry-run", "--settings", str(path)).output)
    assert invoke("run", "outbound", "--settings", str(path)).exit_code == 0

    def delivered(standin, kind: str) -> int:
        return sum(1 for m in standin.messages if m["type"] == kind)

    assert dry == {
        "events@eu": delivered(regions.eu, "track"),
        "events@us": delivered(regions.us, "track"),
        "profiles@eu": delivered(regions.eu, "identify"),
        "profiles@us": delivered(regions.us, "identify"),
    }
    assert dry["events@us"] == 6


def test_a_routed_dry_run_counts_an_unrouted_customer_once_with_the_real_runs_reason(
    write_settings, regions
):
    path = routed_settings(write_settings, regions)
    seed(load_settings(path), {"anna": "DE", "nobody": None}, events_each=1)

    result = invoke("run", "outbound", "--dry-run", "--settings", str(path))

    assert re.search(r"^events@eu \(track\): .*would fail 1$", result.output, re.M)
    assert re.search(r"^events@us \(track\): .*would fail 0$", result.output, re.M)
    assert "top reasons a real run would fail with:" in result.output
    assert (
        "2 x customer <id> has no 'country' in any profile change up to this message, so no "
        "Segment destination is known" in result.output
    )  # an event and a profile change, as the real run's top reasons count them
    assert "outbound.route_by.default" in result.output


def test_a_dry_run_of_one_destination_reports_only_that_destination(write_settings, regions):
    path = routed_settings(write_settings, regions)
    seed(load_settings(path), {"anna": "DE", "bob": "US"}, events_each=1)

    result = invoke("run", "outbound", "--dry-run", "--destination", "us", "--settings", str(path))

    assert result.exit_code == 0, result.output
    assert would_send(result.output) == {"events@us": 1, "profiles@us": 1}


def test_a_routed_dry_run_without_a_write_key_names_the_destinations_variable(
    write_settings, regions, monkeypatch
):
    path = routed_settings(write_settings, regions)
    seed(load_settings(path), {"bob": "US"}, events_each=1)
    monkeypatch.delenv("SEGMENT_WRITE_KEY_US")

    result = invoke("run", "outbound", "--dry-run", "--settings", str(path))

    assert result.exit_code == 0, result.output
    assert "SEGMENT_WRITE_KEY_US (outbound.destinations[us]) is not set" in result.output
    assert would_send(result.output)["events@us"] == 1
