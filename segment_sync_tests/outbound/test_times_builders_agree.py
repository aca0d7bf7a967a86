"""The run and a resend read a row's time alike: the same messageId, the same verdict."""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa

from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import loyalty_events
from segment_sync.outbound.replay import resync
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.syncs import outbound_sync
from segment_sync_tests.outbound.test_bad_rows_property import fresh_sync


def test_a_row_past_2255_is_resynced_under_the_message_id_it_was_sent_with(segment_standin):
    """Past 2^53 microseconds DuckDB's float steps round once more than Python's (review)."""
    with tempfile.TemporaryDirectory() as root:
        sync = fresh_sync(Path(root), segment_standin.url)
        insert_raw(sync.store, loyalty_events, occurred_at="2403-04-21 10:36:02.105999")
        sync.run(Stream.EVENTS, "run-1")
        resync(sync, [Stream.EVENTS], "resync-1", "2403-04-21", "2403-04-21")
        ids = [m["messageId"] for m in segment_standin.messages]
        assert len(ids) == 2 and ids[0] == ids[1], ids


def test_a_bc_time_on_postgresql_is_failed_by_the_run_as_replay_fails_it(
    write_settings, segment_standin, pg_url
):
    """to_char drops the era: 44 BC was sent dated AD 44, which replay refuses (review)."""
    sync = outbound_sync(
        write_settings(loyalty_store={"url": pg_url}, outbound={"base_url": segment_standin.url})
    )
    good = sync.store.append_events([NewEvent("c-1", "point_add")])
    with sync.store.engine.begin() as conn:
        odd = conn.execute(
            sa.text(
                "INSERT INTO loyalty_events (customer_id, action, data, occurred_at, origin) "
                "VALUES ('c-odd', 'point_add', '{}', '0044-03-15 00:00:00+00 BC', 'loyalty') "
                "RETURNING id"
            )
        ).scalar_one()
    sync.run(Stream.EVENTS, "run-1")
    sent = {int(m["messageId"].split("-")[2]): m["timestamp"] for m in segment_standin.messages}
    assert odd not in sent, f"44 BC sent as {sent.get(odd)}"
    assert sorted(sent) == good
