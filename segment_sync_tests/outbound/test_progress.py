"""Outbound progress belongs to one store and one destination; it never skips another's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.loyalty.demo import seed
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.build import build_messages
from segment_sync.outbound.results import OutboundFailed
from segment_sync.outbound.state import OutboundState, ProgressKey
from segment_sync.settings import load_settings
from segment_sync.standins.segment import SegmentStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.syncs import outbound_sync

SECOND_KEY = "test-us-write-key-second-source"


def folder_settings(folder: Path, segment_url: str, state_url: str) -> Path:
    """A settings file in `folder` whose store and logs are relative: they live beside it."""
    folder.mkdir(parents=True)
    path = folder / "segment_sync.yaml"
    data = {
        "loyalty_store": {"url": "sqlite:///loyalty.db"},
        "outbound": {
            "base_url": segment_url,
            "event_sync": ["point_add", "checkout", "purchase"],
            "customer_fields_sync": ["first_name", "last_name", "email"],
            "state_url": state_url,
            "backoff_cap_s": 0.2,
        },
        "logs": {"dir": "logs"},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def sendable_ids(settings, stream: Stream = Stream.EVENTS) -> set[str]:
    store = LoyaltyStore(settings.loyalty_store.url)
    rows = store.rows_after(stream, 0, 10**12, 10**7)
    return {m.message_id for m in build_messages(rows, settings, stream)[0]}


def test_two_stores_in_two_folders_run_from_one_directory_each_deliver_every_row(
    tmp_path, monkeypatch, segment_standin
):
    monkeypatch.setenv("SEGMENT_WRITE_KEY", WRITE_KEY)
    shared_state = f"sqlite:///{tmp_path}/shared/state.db"  # one state database for both
    first = folder_settings(tmp_path / "first", segment_standin.url, shared_state)
    second = folder_settings(tmp_path / "second", segment_standin.url, shared_state)
    seed(LoyaltyStore(load_settings(first).loyalty_store.url), 300, 0, 20, seed_value=1)
    seed(LoyaltyStore(load_settings(second).loyalty_store.url), 500, 0, 30, seed_value=2)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for path in (first, second):
        args = ["run", "outbound", "--stream", "events", "--settings", str(path)]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    received = set(segment_standin.accepted_message_ids())
    assert (tmp_path / "second" / "loyalty.db").exists() and not (workdir / "loyalty.db").exists()
    assert sendable_ids(load_settings(first)) <= received
    assert sendable_ids(load_settings(second)) <= received  # none skipped behind the first's ids
    assert (tmp_path / "second" / "logs").is_dir()


def test_a_watermark_ahead_of_a_rebuilt_store_stops_the_run_and_sends_nothing(
    write_settings, segment_standin
):
    settings = load_settings(write_settings(outbound={"base_url": segment_standin.url}))
    store_file = Path(settings.loyalty_store.url.reveal().removeprefix("sqlite:///"))
    seed(LoyaltyStore(settings.loyalty_store.url), 400, 0, 20)
    assert outbound_sync(settings).run(Stream.EVENTS, "run-1").watermark_after == 400
    store_file.unlink()
    Path(f"{store_file}-wal").unlink(missing_ok=True)
    Path(f"{store_file}-shm").unlink(missing_ok=True)
    seed(LoyaltyStore(settings.loyalty_store.url), 50, 0, 10, seed_value=9)  # rebuilt: ids 1-50
    before = len(segment_standin.messages)
    with pytest.raises(OutboundFailed) as failed:
        outbound_sync(settings).run(Stream.EVENTS, "run-2")
    message = str(failed.value)
    assert str(store_file.resolve()) in message  # names the store
    assert "at id 400" in message and "newest events id is 50" in message
    assert "outbound_progress" in message and "loyalty_store.url" in message  # the fix
    assert len(segment_standin.messages) == before
    assert failed.value.result.counts.sent == 0


@pytest.fixture
def two_key_standin():
    """A Segment stand-in that accepts two write keys of the us region (two sources)."""
    stand = SegmentStandin("us", {WRITE_KEY: "us", SECOND_KEY: "us"})
    with serve_in_thread(stand.app) as url:
        stand.url = url
        yield stand


def test_two_write_keys_keep_separate_progress_on_one_store(write_settings, two_key_standin):
    settings = load_settings(write_settings(outbound={"base_url": two_key_standin.url}))
    seed(LoyaltyStore(settings.loyalty_store.url), 300, 0, 20)
    expected = sendable_ids(settings)
    assert outbound_sync(settings, WRITE_KEY).run(Stream.EVENTS, "run-a").counts.sent == len(
        expected
    )
    again = outbound_sync(settings, SECOND_KEY).run(Stream.EVENTS, "run-b")
    assert again.watermark_before == 0 and again.counts.sent == len(expected)
    received = two_key_standin.accepted_message_ids()
    assert sorted(received) == sorted(list(expected) * 2)  # every row once per destination
    first = factory.outbound_state(settings, WRITE_KEY)
    assert first.watermark(Stream.EVENTS) == 300
    assert first.key.destination.startswith(f"{two_key_standin.url} key:")
    assert WRITE_KEY not in repr(first.key) and SECOND_KEY not in repr(first.key)


def test_the_lock_of_one_deployment_does_not_block_another_on_one_postgresql(pg_url, tmp_path):
    endpoint = "https://api.segment.io"
    ours = ProgressKey.of(f"sqlite:///{tmp_path}/a/loyalty.db", endpoint, WRITE_KEY)
    theirs = ProgressKey.of(
        "postgresql://sync:secret-pw@db.example:5432/loyalty", endpoint, WRITE_KEY
    )
    assert "secret-pw" not in repr(theirs) and theirs.source == (
        "postgresql://sync@db.example:5432/loyalty"
    )
    state, other, same = (
        OutboundState(pg_url, ours),
        OutboundState(pg_url, theirs),
        OutboundState(pg_url, ours),
    )
    assert state.advisory_key(Stream.EVENTS) != other.advisory_key(Stream.EVENTS)
    with state.lock(Stream.EVENTS):
        with other.lock(Stream.EVENTS, wait_s=0.3):
            pass  # another deployment's stream is free
        with pytest.raises(RuntimeError, match="another run"), same.lock(Stream.EVENTS, wait_s=0.3):
            pass
    for s in (state, other, same):
        s.close()


def test_the_sqlite_lock_of_another_store_does_not_block(tmp_path):
    endpoint = "https://api.segment.io"
    url = f"sqlite:///{tmp_path}/state.db"
    a = OutboundState(url, ProgressKey.of(f"sqlite:///{tmp_path}/a.db", endpoint, WRITE_KEY))
    b = OutboundState(url, ProgressKey.of(f"sqlite:///{tmp_path}/b.db", endpoint, WRITE_KEY))
    with a.lock(Stream.PROFILES):
        with b.lock(Stream.PROFILES, wait_s=0.3):
            pass
        with pytest.raises(RuntimeError, match="another run"), a.lock(Stream.PROFILES, wait_s=0.3):
            pass
