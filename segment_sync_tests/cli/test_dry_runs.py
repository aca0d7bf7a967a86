"""`run inbound --dry-run` and `run outbound --dry-run`: what would be sent, nothing sent."""

from __future__ import annotations

from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

PROFILES = {"name": "Profiles", "action": "profile_update"}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _inbound(write_settings, antavo_standin, tmp_path, count: int = 3):
    url = f"sqlite:///{tmp_path}/in.db"
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": url, "mappings": [PROFILES]}
    )
    buffer = InboundBuffer(url)
    buffer.add_many(
        [
            {"type": "identify", "messageId": f"m-{n}", "userId": f"c-{n}", "traits": {}}
            for n in range(count)
        ]
    )
    return str(path), buffer


def _snapshot(buffer: InboundBuffer) -> list:
    return buffer.items(limit=10_000)


def test_inbound_dry_run_prints_events_per_action_requests_and_bytes(
    write_settings, antavo_standin, tmp_path
):
    path, _ = _inbound(write_settings, antavo_standin, tmp_path)
    result = invoke("run", "inbound", "--dry-run", "--settings", path)
    assert result.exit_code == 0, result.output
    assert "would send 3 Antavo event(s) in 1 request(s)" in result.output
    assert "action profile: 3" in result.output and "sample request 1" in result.output


def test_inbound_dry_run_sends_nothing_to_antavo(write_settings, antavo_standin, tmp_path):
    path, _ = _inbound(write_settings, antavo_standin, tmp_path)
    invoke("run", "inbound", "--dry-run", "--settings", path)
    assert antavo_standin.events == [] and antavo_standin.stats()["requests"] == 0


def test_inbound_dry_run_leaves_the_buffer_unchanged(write_settings, antavo_standin, tmp_path):
    path, buffer = _inbound(write_settings, antavo_standin, tmp_path)
    before = _snapshot(buffer)
    invoke("run", "inbound", "--dry-run", "--settings", path)
    assert _snapshot(buffer) == before


def test_inbound_dry_run_never_prints_the_antavo_credentials(
    write_settings, antavo_standin, tmp_path
):
    path, _ = _inbound(write_settings, antavo_standin, tmp_path)
    result = invoke("run", "inbound", "--dry-run", "--settings", path)
    assert ANTAVO_KEY not in result.output and ANTAVO_SECRET not in result.output


def test_inbound_dry_run_sample_bodies_are_capped_at_three(
    write_settings, antavo_standin, tmp_path
):
    path, _ = _inbound(write_settings, antavo_standin, tmp_path, count=200)
    result = invoke("run", "inbound", "--dry-run", "--settings", path)
    assert "in 4 request(s)" in result.output
    assert "sample request 3" in result.output and "sample request 4" not in result.output
