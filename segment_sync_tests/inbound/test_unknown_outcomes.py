"""An ambiguous Antavo answer is not a failure: its events are `unknown`, visible in the inbound log
and its filters, fail the run, and are replayed only when the user says so. Real stand-in with
an injected short or malformed bulk answer, real SQLite, the CLI and Dagster."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.definitions import build_definitions
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect

CHECKOUT = {
    "name": "Order completed",
    "action": "loyalty_event",
    "trigger": 'type = "track"',
    "fields": {"action": {"@literal": "checkout"}, "data": {"mid": {"@path": "$.messageId"}}},
}


def orders(n: int) -> list[dict]:
    return [{"type": "track", "event": "Order Completed", "messageId": f"o-{i}",
             "userId": f"c-{i}"} for i in range(n)]  # fmt: skip


@pytest.fixture
def setup(write_settings, antavo_standin, tmp_path):
    """50 buffered orders (one bulk request) and a stand-in whose next bulk answer is `fault`."""

    def make(fault: str = "one_short"):
        values = {
            "base_url": antavo_standin.url,
            "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
            "mappings": [CHECKOUT],
        }
        path = write_settings(inbound=values)
        buffer = InboundBuffer(values["buffer_url"])
        buffer.add_many(orders(50))
        antavo_standin.configure(bulk_answer_faults=[fault])
        return path, buffer

    return make


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def registrations(antavo_standin) -> int:
    return len(antavo_standin.events)


@pytest.mark.parametrize("fault", ["one_short", "malformed"])
def test_events_of_an_ambiguous_answer_are_unknown_not_failed_and_the_run_fails(
    setup, antavo_standin, tmp_path, fault
):
    path, buffer = setup(fault)

    result = cli("run", "inbound", "--settings", str(path))

    assert registrations(antavo_standin) == 50  # Antavo has them all
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "failed 0, unknown outcome 50" in result.output
    # Not Antavo's answer, or a broken one: the run stops (the next would fare the same).
    assert "not Antavo's JSON answer" in result.output and "stopped" in result.output
    if fault == "one_short":
        assert "answer has 49 results for 50 events" in result.output
    assert buffer.counts() == {"pending": 0, "done": 0, "failed": 0, "unknown": 50}
    assert {(r.attempts, r.last_error.startswith("Order completed: outcome unknown"))
            for r in buffer.items(limit=100)} == {(1, True)}  # fmt: skip
    logs = connect(tmp_path / "logs")
    assert logs.execute("SELECT status, count(*) FROM inbound_log GROUP BY ALL").fetchall() == [
        ("unknown", 50)
    ]
    assert logs.execute("SELECT DISTINCT outcome FROM inbound_items").fetchall() == [("unknown",)]
    [(status, error)] = logs.execute("SELECT status, error FROM sync_runs").fetchall()
    assert status == "failure" and "unknown outcome" in error


def test_the_inbound_log_filters_by_status_unknown(setup, tmp_path):
    path, _ = setup()
    cli("run", "inbound", "--settings", str(path))

    shown = cli(
        "logs", "inbound", "--settings", str(path), "--filter", "Status is in unknown",
        "--format", "json", "--limit", "0",
    )  # fmt: skip

    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert len(rows) == 50 and {r["status"] for r in rows} == {"unknown"}
    assert all("outcome unknown" in r["error"] for r in rows)


def test_replay_leaves_unknown_items_alone_so_nothing_is_registered_twice(setup, antavo_standin):
    path, buffer = setup()
    cli("run", "inbound", "--settings", str(path))

    replay = cli("replay", "inbound", "--settings", str(path))
    rerun = cli("run", "inbound", "--settings", str(path))

    assert replay.exit_code == 0 and "re-queued 0 failed inbound item(s)" in replay.output
    assert "50 item(s) with an unknown outcome were not re-queued" in replay.output
    assert "--include-unknown" in replay.output
    assert buffer.counts()["unknown"] == 50 and rerun.exit_code == 0
    assert registrations(antavo_standin) == 50  # before: the replay registered all 50 again


def test_include_unknown_replays_them_on_the_users_word_with_the_duplicates_it_warns_of(
    setup, antavo_standin
):
    path, buffer = setup()
    cli("run", "inbound", "--settings", str(path))
    help_text = cli("replay", "inbound", "--help").output

    replay = cli("replay", "inbound", "--settings", str(path), "--include-unknown")
    rerun = cli("run", "inbound", "--settings", str(path))

    assert "registered twice" in " ".join(help_text.split())
    assert "re-queued 50 failed or unknown-outcome inbound item(s)" in replay.output
    assert rerun.exit_code == 0 and buffer.counts()["done"] == 50
    assert registrations(antavo_standin) == 100  # what the flag's help text warns about


def test_the_dagster_run_fails_saying_why_and_the_replay_job_takes_include_unknown(
    setup, antavo_standin
):
    path, buffer = setup()
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def("inbound_ingest_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        replay_config = {"ops": {"requeue_failed_inbound_items": {"config": {}}}}
        replay = defs.resolve_job_def("inbound_replay_job").execute_in_process(
            instance=instance, run_config=replay_config
        )
        replay_config["ops"]["requeue_failed_inbound_items"]["config"]["include_unknown"] = True
        replay_all = defs.resolve_job_def("inbound_replay_job").execute_in_process(
            instance=instance, run_config=replay_config
        )
    [failure] = [e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert not run.success and "--include-unknown" in description and "stopped" in description
    assert replay.output_for_node("requeue_failed_inbound_items") == 0
    assert replay_all.output_for_node("requeue_failed_inbound_items") == 50
    assert buffer.counts()["pending"] == 50
