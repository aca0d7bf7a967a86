"""`replay outbound` and `resync outbound` against the Segment stand-in, through the CLI."""

from __future__ import annotations

from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def events(path, action: str, n: int, external: bool = True) -> list[int]:
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    return store.append_events(
        [NewEvent(f"c-{i}", action, {"i": i}, f"x-{i}" if external else None) for i in range(n)]
    )


def logged(path, sql: str) -> list[tuple]:
    with connect(load_settings(path).logs.dir) as con:
        return con.execute(sql).fetchall()


def test_replay_delivers_what_an_outage_left_pending_with_the_same_message_ids(
    write_settings, segment_standin
):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": 100, "max_retries": 0}
    )
    events(path, "point_add", 250)
    segment_standin.set_faults(outage_requests=1000)
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 1
    pending = {m for (m,) in logged(path, "SELECT message_id FROM outbound_messages")}
    assert len(pending) == 100 and segment_standin.accepted_message_ids() == []

    segment_standin.set_faults(outage_requests=0)
    result = invoke("replay", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "replay events: found 100 row(s); sent 100, failed 0" in result.output
    assert set(segment_standin.accepted_message_ids()) == pending
    assert len(segment_standin.accepted_message_ids()) == 100
    state = factory.outbound_state(load_settings(path), WRITE_KEY)
    assert state.watermark(Stream.EVENTS) == 0  # replay never moves the watermark
    runs = logged(path, "SELECT job, status FROM sync_runs ORDER BY started_at")
    assert runs == [("outbound_sync_job", "failure"), ("outbound_replay_job", "success")]


def test_replay_skips_messages_whose_final_outcome_is_delivered(write_settings, segment_standin):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "chunk_size": 100, "max_retries": 0}
    )
    events(path, "point_add", 150)
    segment_standin.set_faults(outage_requests=1000)
    invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    segment_standin.set_faults(outage_requests=0)
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 0
    segment_standin.reset()
    result = invoke("replay", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "replay events: found 0 row(s)" in result.output
    assert segment_standin.requests == []


def test_replay_filter_picks_the_rejected_messages_only(write_settings, segment_standin):
    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        outbound={"base_url": segment_standin.url},
    )
    events(path, "point_add", 27)
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-r", "point_add", {"refuse_me": i}, "x-r") for i in range(3)])
    events(path, "checkout", 4, external=False)  # fail for good: no external ID
    segment_standin.set_faults(refuse_marker="refuse_me")  # Segment answers 400 for these 3
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 1
    assert len(segment_standin.accepted_message_ids()) == 27

    segment_standin.set_faults(refuse_marker="")
    result = invoke(
        "replay", "outbound", "--filter", "Status code is 400", "--since", "1h", "--settings",
        str(path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "found 3 row(s); sent 3" in result.output
    assert len(set(segment_standin.accepted_message_ids())) == 30

    everything = invoke("replay", "outbound", "--settings", str(path))
    assert everything.exit_code == 1  # the 4 without an ID still fail, and say why
    assert "4 x customer <id> has no external_customer_id" in everything.output


def test_replay_refuses_a_filter_it_cannot_read_before_running(write_settings):
    path = write_settings()
    result = CliRunner().invoke(
        main, ["replay", "outbound", "--filter", "Colour is red", "--settings", str(path)]
    )
    assert result.exit_code == 1 and "Colour" in result.output
    assert "Traceback" not in result.output
    assert logged(path, "SELECT count(*) FROM sync_runs") == [(0,)]


def test_resync_sends_the_events_of_an_action_added_to_event_sync(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "event_sync": ["point_add"]})
    events(path, "point_add", 10)
    checkouts = events(path, "checkout", 7)
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 0
    assert len(segment_standin.accepted_message_ids()) == 10
    events(path, "checkout", 3)  # above the watermark: the next regular run's, not resync's

    write_settings(
        outbound={"base_url": segment_standin.url, "event_sync": ["point_add", "checkout"]}
    )
    segment_standin.reset()
    result = invoke(
        "resync", "outbound", "--since", "1h", "--stream", "events", "--settings", str(path)
    )
    assert result.exit_code == 0, result.output
    assert "resync events: found 17 row(s); sent 17" in result.output
    sent = segment_standin.messages
    assert sorted(m["messageId"].split("-")[2] for m in sent if m["event"] == "checkout") == sorted(
        str(i) for i in checkouts
    )
    assert logged(path, "SELECT job, status FROM sync_runs WHERE job LIKE '%resync%'") == [
        ("outbound_resync_job", "success")
    ]


def test_resync_of_a_stream_that_is_off_sends_nothing_and_says_why(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "customer_fields_sync": []})
    result = invoke(
        "resync", "outbound", "--since", "1d", "--stream", "profiles", "--settings", str(path)
    )
    assert "outbound.customer_fields_sync is empty" in result.output
    assert segment_standin.requests == []


def test_replay_never_resends_a_message_segment_accepted_even_if_a_later_send_failed(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    events(path, "point_add", 20)
    assert invoke("run", "outbound", "--stream", "events", "--settings", str(path)).exit_code == 0
    segment_standin.set_faults(reject_requests=1000)  # every request and split half: 400
    resynced = invoke("resync", "outbound", "--since", "1h", "--settings", str(path))
    assert resynced.exit_code == 1 and "20 message(s) failed" in resynced.output
    segment_standin.reset()
    result = invoke("replay", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "replay events: found 0 row(s)" in result.output and segment_standin.requests == []
