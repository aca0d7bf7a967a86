"""The progress key holds no endpoint password; progress kept under a key that held one (earlier
versions) moves to the new key, so an upgrade neither resends nor skips a row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from segment_sync.db import fingerprint, sqlalchemy_url
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.state import OutboundState, ProgressKey, progress, sharding
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.outbound.syncs import outbound_sync
from segment_sync_tests.url_passwords import (
    Password,
    database_rows,
    leaked_rows,
    passwords,
    with_password,
)

ENDPOINTS = st.sampled_from(
    ["https://api.segment.io", "http://127.0.0.1:8701", "http://relay.example/segment/", "http://h"]
)


@given(
    endpoint=ENDPOINTS,
    user=st.sampled_from(["", "sync", "a.b"]),
    password=st.none() | passwords(for_http=True),
)
def test_the_key_is_the_endpoint_without_its_password_and_otherwise_unchanged(
    endpoint, user, password
):
    if password is None:  # the key earlier versions wrote: existing progress rows still match
        url = expected = endpoint.replace("://", f"://{user}@") if user else endpoint
    else:
        url = with_password(endpoint, user, password)
        expected = endpoint.replace("://", f"://{user}@")
    key = ProgressKey.of("sqlite:///store.db", url, WRITE_KEY)
    assert key.destination == f"{expected} key:{fingerprint(WRITE_KEY)}"
    assert (key.legacy_destination is None) == (password is None)
    if password is not None:
        assert not password.leaks_in(repr(key)) and not password.leaks_in(key.destination)


def _row(url: str, key: ProgressKey, destination: str, stream: str, upto: int, table=progress):
    """A row as versions before this fix wrote it (under the endpoint with its password)."""
    OutboundState(url, ProgressKey("x", "y")).close()  # the tables, as the old version had them
    engine = sa.create_engine(sqlalchemy_url(url))
    values = {"source": key.source, "destination": destination, "stream": stream}
    values |= {"delivered_upto": upto, "run_id": "old-run"} if table is progress else {"shards": 1}
    with engine.begin() as conn:
        conn.execute(table.insert().values(**values, updated_at=datetime.now(UTC)))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("pg_url")


def test_an_upgrade_keeps_the_place_of_a_key_that_held_a_password(
    write_settings, segment_standin, state_url
):
    password = Password("PWa123456@b:c%40dPWz654321", "PWa123456", "PWz654321")
    endpoint = with_password(segment_standin.url, "sync", password)
    path = write_settings(outbound={"base_url": endpoint, "state_url": state_url})
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i}", "point_add", {"i": i}) for i in range(30)]
    )
    key = ProgressKey.of(settings.loyalty_store.url, settings.outbound.endpoint, WRITE_KEY)
    _row(state_url, key, f"{endpoint} key:{fingerprint(WRITE_KEY)}", "events", 20)

    result = outbound_sync(settings).run(Stream.EVENTS, "after-upgrade")

    assert (result.watermark_before, result.watermark_after, result.counts.sent) == (20, 30, 10)
    assert len(segment_standin.accepted_message_ids()) == 10  # rows 21-30, none resent
    rows = database_rows(sqlalchemy_url(state_url))
    assert leaked_rows(rows, password) == []
    engine = sa.create_engine(sqlalchemy_url(state_url))
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(progress.c.destination).where(
                progress.c.source == key.source, progress.c.stream == "events"
            )
        ).scalars()
        assert list(kept) == [key.destination]
    engine.dispose()


def test_when_both_keys_hold_progress_the_higher_watermark_stays_and_the_old_row_goes(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    endpoint = "http://sync:hunter2-pw@relay.example:8701"
    key = ProgressKey.of(f"sqlite:///{tmp_path}/store.db", endpoint, WRITE_KEY)
    assert key.legacy_destination == f"{endpoint} key:{fingerprint(WRITE_KEY)}"
    _row(url, key, key.legacy_destination, "events", 50)
    _row(url, key, key.legacy_destination, "profiles", 7)
    _row(url, key, key.legacy_destination, "events", 0, table=sharding)
    _row(url, key, key.destination, "events", 20)  # a newer process started from 0 meanwhile

    state = OutboundState(url, key)

    assert (state.watermark(Stream.EVENTS), state.watermark(Stream.PROFILES)) == (50, 7)
    rows = database_rows(sqlalchemy_url(url))
    assert not [r for r in rows if "hunter2" in repr(r)]
    assert len([r for r in rows if r[:3] == (key.source, key.destination, "events")]) == 2
    state.close()
