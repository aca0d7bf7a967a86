"""`run inbound --dry-run` and `run outbound --dry-run`: what would be sent, nothing sent."""

from __future__ import annotations

from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.loyalty.records import Stream
from segment_sync.redaction import SecretUrl
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WRITE_KEY

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


def _outbound(write_settings, segment_standin) -> str:
    path = write_settings(outbound={"base_url": segment_standin.url})
    invoke("demo", "seed", "--events", "200", "--profiles", "30", "--settings", str(path))
    return str(path)


def _watermarks(path: str) -> tuple[int, int]:
    settings = load_settings(path)
    state = factory.outbound_state(settings, WRITE_KEY)
    return state.watermark(Stream.EVENTS), state.watermark(Stream.PROFILES)


def test_outbound_dry_run_prints_messages_per_type_requests_and_bytes(
    write_settings, segment_standin
):
    result = invoke(
        "run", "outbound", "--dry-run", "--settings", _outbound(write_settings, segment_standin)
    )
    assert result.exit_code == 0, result.output
    assert "events (track): ids 1..200" in result.output
    assert "profiles (identify): ids 1..30 (handled up to id 0), rows 30" in result.output
    assert "total: track " in result.output and ", identify " in result.output
    assert "sample message 3" in result.output and "sample message 4" not in result.output


def test_outbound_dry_run_sends_nothing_to_segment(write_settings, segment_standin):
    invoke("run", "outbound", "--dry-run", "--settings", _outbound(write_settings, segment_standin))
    assert segment_standin.stats()["requests"] == 0 and segment_standin.messages == []


def test_outbound_dry_run_leaves_the_watermarks_unchanged(write_settings, segment_standin):
    path = _outbound(write_settings, segment_standin)
    invoke("run", "outbound", "--stream", "events", "--settings", path)
    invoke("demo", "seed", "--events", "20", "--profiles", "0", "--settings", path)
    before = _watermarks(path)
    result = invoke("run", "outbound", "--dry-run", "--settings", path)
    assert "events (track): ids 201..220" in result.output
    assert _watermarks(path) == before == (200, 0)


def test_outbound_dry_run_never_prints_the_write_key(write_settings, segment_standin):
    result = invoke(
        "run", "outbound", "--dry-run", "--settings", _outbound(write_settings, segment_standin)
    )
    assert WRITE_KEY not in result.output


def test_outbound_dry_run_needs_no_write_key_and_counts_from_the_progress_kept(
    write_settings, segment_standin, monkeypatch
):
    path = _outbound(write_settings, segment_standin)
    invoke("run", "outbound", "--stream", "events", "--settings", path)
    invoke("demo", "seed", "--events", "20", "--profiles", "0", "--settings", path)
    monkeypatch.delenv("SEGMENT_WRITE_KEY")
    result = invoke("run", "outbound", "--dry-run", "--settings", path)
    assert result.exit_code == 0, result.output
    assert "events (track): ids 201..220 (handled up to id 200)" in result.output
    assert "profiles (identify): ids 1..30 (handled up to id 0)" in result.output
    assert (
        "SEGMENT_WRITE_KEY (outbound.write_key_env) is not set: counted from the one progress "
        "kept for this store and endpoint; a real run needs SEGMENT_WRITE_KEY"
    ) in result.output
    assert segment_standin.stats()["requests"] == 1  # the real run's; the dry run sent nothing


def test_outbound_dry_run_without_a_write_key_or_progress_counts_every_row_pending(
    write_settings, segment_standin, monkeypatch
):
    path = _outbound(write_settings, segment_standin)
    monkeypatch.delenv("SEGMENT_WRITE_KEY")
    result = invoke("run", "outbound", "--dry-run", "--stream", "events", "--settings", path)
    assert result.exit_code == 0, result.output
    assert "events (track): ids 1..200 (handled up to id 0), rows 200" in result.output
    assert "nothing was sent from this store to this endpoint with any write key" in (result.output)


def test_outbound_dry_run_without_a_write_key_counts_from_the_lowest_of_several_keys(
    write_settings, segment_standin, monkeypatch
):
    path = _outbound(write_settings, segment_standin)
    invoke("run", "outbound", "--stream", "events", "--settings", path)  # WRITE_KEY: up to 200
    settings = load_settings(path)
    other = factory.outbound_state(settings, "another-sources-write-key")
    other.advance(Stream.EVENTS, 150, "another-run")
    other.close()
    monkeypatch.delenv("SEGMENT_WRITE_KEY")
    result = invoke("run", "outbound", "--dry-run", "--stream", "events", "--settings", path)
    assert "events (track): ids 151..200 (handled up to id 150)" in result.output
    assert "2 write keys have progress for this store and endpoint" in result.output


def test_outbound_dry_run_without_a_write_key_ignores_another_endpoints_progress(
    write_settings, segment_standin, monkeypatch
):
    path = _outbound(write_settings, segment_standin)
    settings = load_settings(path)
    # An endpoint whose URL starts with this one's: its progress is still another destination's.
    proxy = SecretUrl(f"{segment_standin.url}/proxy")
    elsewhere = settings.model_copy(
        update={"outbound": settings.outbound.model_copy(update={"base_url": proxy})}
    )
    state = factory.outbound_state(elsewhere, WRITE_KEY)
    state.advance(Stream.EVENTS, 180, "a-proxied-run")
    state.close()
    monkeypatch.delenv("SEGMENT_WRITE_KEY")
    result = invoke("run", "outbound", "--dry-run", "--stream", "events", "--settings", path)
    assert "events (track): ids 1..200 (handled up to id 0)" in result.output


def test_inbound_dry_run_with_every_mapping_disabled_says_so(
    write_settings, antavo_standin, tmp_path
):
    disabled = {**PROFILES, "enabled": False}
    path = write_settings(
        inbound={"buffer_url": f"sqlite:///{tmp_path}/in.db", "mappings": [disabled]}
    )
    result = invoke("run", "inbound", "--dry-run", "--settings", str(path))
    assert result.exit_code == 1
    assert "dry run: inbound sends nothing: every mapping in inbound.mappings is disabled" in (
        result.output
    )


def test_outbound_dry_run_says_nothing_is_pending_after_a_full_run(write_settings, segment_standin):
    path = _outbound(write_settings, segment_standin)
    invoke("run", "outbound", "--stream", "events", "--settings", path)
    result = invoke("run", "outbound", "--dry-run", "--stream", "events", "--settings", path)
    assert "events (track): nothing pending (handled up to id 200), rows 0" in result.output
