"""A batch Segment refuses (400) is narrowed to the messages it refuses; the rest go in the same run.

The stand-in's `refuse_marker` fault answers 400 to any request carrying a message whose
properties have the marker key (real Segment answers 400 only for a body it cannot take as a
whole; the fault models a 400 caused by one message). Runs go through the CLI, as a user runs them.
"""

from __future__ import annotations

from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY

MARKER = "refuse_me"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def seed(path, count: int, marked: set[int]) -> list[int]:
    """`count` events; those at the `marked` positions carry the marker the stand-in refuses."""
    events = [
        NewEvent(f"c-{i % 97}", "purchase", {"total": i, **({MARKER: True} if i in marked else {})})
        for i in range(count)
    ]
    return LoyaltyStore(load_settings(path).loyalty_store.url).append_events(events)


def logged(path, sql: str) -> list[tuple]:
    with connect(load_settings(path).logs.dir) as con:
        return con.execute(sql).fetchall()


def source_ids(message_ids: list[str]) -> set[int]:
    return {int(m.split("-")[2]) for m in message_ids}


def run_outbound(path):
    return invoke("run", "outbound", "--stream", "events", "--settings", str(path))


def test_one_refused_message_in_3000_fails_alone_and_the_2999_others_are_delivered_in_the_run(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    ids = seed(path, 3_000, marked={1234})
    segment_standin.set_faults(refuse_marker=MARKER)
    result = run_outbound(path)
    assert result.exit_code == 1, result.output  # something failed: the run says so
    assert "1 message(s) failed, 0 stayed pending (sent 2999" in result.output
    delivered = segment_standin.accepted_message_ids()
    assert len(delivered) == 2_999 and source_ids(delivered) == set(ids) - {ids[1234]}
    [(source_id, error)] = logged(
        path, "SELECT source_id, error FROM outbound_messages WHERE outcome = 'failed'"
    )
    assert source_id == ids[1234]
    assert "HTTP 400" in error and "message_refused" in error  # Segment's reason, from its body
    assert "refused alone" in error
    [(status, sent, failed)] = logged(
        path, "SELECT status, messages_sent, messages_failed FROM sync_runs"
    )
    assert (status, sent, failed) == ("failure", 2_999, 1)
    # The watermark passes the failed message, as it does every failed one: replay resends it.
    state = factory.outbound_state(load_settings(path), WRITE_KEY)
    assert state.watermark(Stream.EVENTS) == ids[-1]


def test_each_split_request_is_its_own_log_row_and_each_message_names_the_one_that_settled_it(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    seed(path, 3_000, marked={1234})
    segment_standin.set_faults(refuse_marker=MARKER)
    run_outbound(path)
    requests = logged(path, "SELECT identifier, status_code, message_count FROM outbound_log")
    assert len({identifier for identifier, _, _ in requests}) == len(requests)
    refused = [(n, count) for _, n, count in requests if n == 400]
    # The refused message's request and every half that still held it, down to it alone.
    assert sorted(count for _, count in refused)[0] == 1 and len(refused) <= 1 + 12
    assert len(requests) <= 2 + 24  # two full requests, and at most 24 to find the one
    assert segment_standin.stats()["requests"] == len(requests)
    assert logged(path, "SELECT requests FROM sync_runs") == [(len(requests),)]
    # One row per message, naming a request that carried it and answered as the row says.
    settled = logged(
        path,
        """SELECT m.outcome, r.status_code, count(*) FROM outbound_messages m
           JOIN outbound_log r USING (identifier) GROUP BY ALL ORDER BY ALL""",
    )
    assert settled == [("delivered", 200, 2_999), ("failed", 400, 1)]
    assert logged(path, "SELECT count(DISTINCT message_id) FROM outbound_messages") == [(3_000,)]


def test_replay_outbound_sends_the_refused_message_once_segment_takes_it(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    ids = seed(path, 3_000, marked={1234})
    segment_standin.set_faults(refuse_marker=MARKER)
    run_outbound(path)
    segment_standin.set_faults(refuse_marker="")  # the cause is fixed
    segment_standin.reset()
    result = invoke("replay", "outbound", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert "replay events: found 1 row(s); sent 1, failed 0" in result.output
    assert source_ids(segment_standin.accepted_message_ids()) == {ids[1234]}


def test_a_batch_with_every_message_refused_costs_at_most_100_more_requests_and_says_so(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    seed(path, 600, marked=set(range(600)))  # one request of 600 messages, all refused
    segment_standin.set_faults(refuse_marker=MARKER)
    result = run_outbound(path)
    assert result.exit_code == 1
    assert segment_standin.stats()["requests"] == 1 + 100
    assert segment_standin.accepted_message_ids() == []
    # No part is narrowed to one message within the budget: none is known bad, all pending.
    outcomes = dict(logged(path, "SELECT outcome, count(*) FROM outbound_messages GROUP BY 1"))
    assert outcomes == {"pending": 600}
    failed, pending = 0, 600
    assert f"{failed} message(s) failed, {pending} stayed pending (sent 0" in result.output
    errors = logged(path, "SELECT error FROM outbound_messages WHERE outcome = 'pending'")
    assert all("budget of 100 extra requests" in e and "stays pending" in e for (e,) in errors)


def test_messages_left_in_unnarrowed_refusals_are_said_to_wait_for_a_replay_not_the_next_run(
    write_settings, segment_standin
):
    """Progress moves past a refused request the split budget left whole, so the next run does
    not send its messages again: the run's hint must not promise that it will (red team)."""
    path = write_settings(outbound={"base_url": segment_standin.url})
    seed(path, 600, marked=set(range(600)))
    segment_standin.set_faults(refuse_marker=MARKER)
    result = run_outbound(path)
    assert result.exit_code == 1
    assert (
        "600 of them are in refused requests not narrowed to single messages: reconciliation "
        "or `segment-sync replay outbound` sends those again" in result.output
    )
    assert "a later run retries" not in result.output
    requests = segment_standin.stats()["requests"]
    assert run_outbound(path).exit_code == 0
    assert segment_standin.stats()["requests"] == requests  # what the hint says: nothing resent


def test_sixteen_refused_in_2500_fail_alone_and_the_good_messages_never_fail(
    write_settings, segment_standin
):
    """One bad message is one failed message: when the split budget runs out, the good ones
    beside the bad stay pending, and a replay once the cause is fixed delivers them all."""
    path = write_settings(outbound={"base_url": segment_standin.url})
    marked = {i for i in range(2_500) if i % 156 == 7}
    ids = seed(path, 2_500, marked=marked)
    segment_standin.set_faults(refuse_marker=MARKER)
    result = run_outbound(path)
    assert result.exit_code == 1, result.output
    failed = logged(path, "SELECT source_id FROM outbound_messages WHERE outcome = 'failed'")
    assert {s for (s,) in failed} <= {ids[i] for i in marked}  # no good message failed
    pending = logged(path, "SELECT count(*) FROM outbound_messages WHERE outcome = 'pending'")
    assert pending[0][0] > 0  # the budget ran out before every bad one was found alone
    good = {ids[i] for i in range(2_500)} - {ids[i] for i in marked}
    delivered = source_ids(segment_standin.accepted_message_ids())
    assert delivered < good
    segment_standin.set_faults(refuse_marker="")  # the cause is fixed
    assert invoke("replay", "outbound", "--settings", str(path)).exit_code == 0
    assert source_ids(segment_standin.accepted_message_ids()) == set(ids)


def test_a_refused_message_among_many_in_a_small_batch_is_found_with_its_neighbours_sent(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    ids = seed(path, 40, marked={0, 17, 39})
    segment_standin.set_faults(refuse_marker=MARKER)
    result = run_outbound(path)
    assert "3 message(s) failed, 0 stayed pending (sent 37" in result.output
    failed = logged(path, "SELECT source_id FROM outbound_messages WHERE outcome = 'failed'")
    assert sorted(s for (s,) in failed) == [ids[0], ids[17], ids[39]]
    assert source_ids(segment_standin.accepted_message_ids()) == set(ids) - {
        ids[0],
        ids[17],
        ids[39],
    }


def test_5xx_answers_while_narrowing_are_retried_as_before_and_a_400_never_is(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 10})
    ids = seed(path, 3_000, marked={2_000})
    # One draw per request from a seeded RNG: among the first 24 (a run makes more) are 5xx.
    segment_standin.set_faults(refuse_marker=MARKER, error_rate=0.2, seed=3)
    result = run_outbound(path)
    assert "1 message(s) failed, 0 stayed pending (sent 2999" in result.output
    assert source_ids(segment_standin.accepted_message_ids()) == set(ids) - {ids[2_000]}
    # The attempts of one request carry the same body: a 400 ends them, a 5xx is tried again.
    requests = logged(
        path,
        """SELECT list(status_code ORDER BY attempt) FROM outbound_log
           GROUP BY md5(request_body)""",
    )
    assert any(len(statuses) > 1 and statuses[-1] == 200 for (statuses,) in requests)
    assert any(400 in statuses for (statuses,) in requests)
    for (statuses,) in requests:
        assert all(status >= 500 for status in statuses[:-1])  # only 5xx were tried again
