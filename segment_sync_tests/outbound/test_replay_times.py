"""PostgreSQL holds times Python has no datetime for (`infinity`, years past 9999): the sync
fails such a row alone, naming its time, and replay reads past it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.outbound.replay import replay
from segment_sync_tests.outbound.syncs import outbound_sync


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("infinity", "time 'infinity' cannot be read: it is infinite"),
        ("-infinity", "time '-infinity' cannot be read: it is infinite"),
        ("12000-01-01 00:00:00+00", "time '12000-01-01 00:00:00"),
    ],
)
def test_a_time_python_cannot_hold_fails_its_row_alone_in_sync_and_replay(
    stored, shown, write_settings, segment_standin, pg_url
):
    sync = outbound_sync(
        write_settings(loyalty_store={"url": pg_url}, outbound={"base_url": segment_standin.url})
    )
    good = sync.store.append_events([NewEvent(f"c-{i}", "point_add") for i in range(2)])
    with sync.store.engine.begin() as conn:
        odd = conn.execute(
            sa.text(
                "INSERT INTO loyalty_events (customer_id, action, data, occurred_at, origin) "
                "VALUES ('c-odd', 'point_add', '{}', :when, 'loyalty') RETURNING id"
            ),
            {"when": stored},
        ).scalar_one()
    good += sync.store.append_events([NewEvent(f"d-{i}", "point_add") for i in range(2)])

    sync.run(Stream.EVENTS, "run-1")  # a failed row is not a failed run
    assert sorted(int(m["messageId"].split("-")[2]) for m in segment_standin.messages) == good
    (done,) = replay(sync, sync.settings.logs.dir, [Stream.EVENTS], "run-replay")
    assert done.found == 1

    with connect(sync.settings.logs.dir) as con:
        rows = con.execute(
            "SELECT run_id, source_id, outcome, error FROM outbound_messages "
            "WHERE outcome <> 'delivered' ORDER BY run_id"
        ).fetchall()
    assert [r[:3] for r in rows] == [("run-1", odd, "failed"), ("run-replay", odd, "failed")]
    for *_, error in rows:
        assert f"loyalty_events id {odd}: column occurred_at cannot be read ({shown}" in error
