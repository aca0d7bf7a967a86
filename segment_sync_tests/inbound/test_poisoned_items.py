"""One bad buffered event is one failed item, on every path that reads it: the ingest, its dry
run, the mapping preview (CLI and Dagster) and a replay. Events the receiver refuses today may
sit in a buffer from before its depth limit, or be written by another client: 990 levels of
nesting, text that is not UTF-8, not JSON, not an object. Real stand-in, real SQLite, the CLI.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.definitions import build_definitions
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.queries import failed_inbound_items
from segment_sync.logs.views import connect

CHECKOUT = {
    "name": "Order completed",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {
        "action": {"@literal": "checkout"},
        "data": {"mid": {"@path": "$.messageId"}, "total": {"@path": "$.properties.total"}},
    },
}
GOOD = 60


def order(i: int) -> dict:
    return {"type": "track", "event": "Order Completed", "messageId": f"o-{i}",
            "userId": f"c-{i}", "properties": {"total": i}}  # fmt: skip


def deep_order(levels: int = 990, message_id: str = "deep-990") -> str:
    """A signed-looking track event whose mapped `properties.total` nests `levels` objects."""
    total = '{"a":' * levels + "1" + "}" * levels
    return (
        '{"type":"track","event":"Order Completed","userId":"c-deep",'
        f'"messageId":"{message_id}","properties":{{"total":{total}}}}}'
    )


@pytest.fixture
def setup(write_settings, antavo_standin, tmp_path):
    """Settings for the stand-in; a buffer holding 30 good orders, `bad` rows, then 30 more."""

    def make(*bad: tuple[str, bytes | str], **inbound) -> tuple[Path, InboundBuffer]:
        values = {
            "base_url": antavo_standin.url,
            "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
            "mappings": [CHECKOUT],
            **inbound,
        }
        path = write_settings(inbound=values)
        buffer = InboundBuffer(values["buffer_url"])
        buffer.add_many([order(i) for i in range(GOOD // 2)])
        for message_id, text in bad:
            store_raw(tmp_path / "inbound.db", message_id, text)
        buffer.add_many([order(i) for i in range(GOOD // 2, GOOD)])
        return path, buffer

    return make


def store_raw(db: Path, message_id: str, text: bytes | str) -> None:
    """Store a row as any SQLite client may: TEXT holding whatever bytes it was given."""
    raw = text.encode() if isinstance(text, str) else text
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO inbound_buffer (message_id, received_at, payload, status, attempts, "
            "updated_at) VALUES (?, ?, CAST(? AS TEXT), 'pending', 0, ?)",
            (message_id, now, raw, now),
        )


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def registered(antavo_standin) -> list[str]:
    return sorted(e["data"]["mid"] for e in antavo_standin.events)


def test_a_990_deep_event_fails_alone_and_the_60_good_events_beside_it_are_registered(
    setup, antavo_standin, tmp_path
):
    path, buffer = setup(("deep-990", deep_order()))

    result = cli("run", "inbound", "--settings", str(path))

    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "recursion" not in result.output.lower()
    assert registered(antavo_standin) == sorted(f"o-{i}" for i in range(GOOD))
    deep = buffer.get_by_message_id("deep-990")
    assert (deep.status, deep.attempts) == ("failed", 1)
    assert deep.last_error.startswith(f"buffer item {deep.id} (messageId 'deep-990') cannot be")
    assert "more than 64 levels deep" in deep.last_error
    assert {k: n for k, n in buffer.counts().items() if n} == {"done": GOOD, "failed": 1}
    assert "failed 1" in result.output and "more than 64 levels deep" in result.output
    logs = connect(tmp_path / "logs")
    [(status, error)] = logs.execute(
        "SELECT status, error FROM inbound_log WHERE message_id = 'deep-990'"
    ).fetchall()
    assert status == "error" and "buffer item" in error and "64 levels" in error
    [(outcome,)] = logs.execute(
        "SELECT outcome FROM inbound_items WHERE message_id = 'deep-990'"
    ).fetchall()
    assert outcome == "failed"
    [(run_status, failed)] = logs.execute(
        "SELECT status, messages_failed FROM sync_runs"
    ).fetchall()
    assert (run_status, failed) == ("failure", 1)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert failed_inbound_items(tmp_path / "logs", since)[0] == 1  # what the check counts


@pytest.mark.parametrize(
    "text, problem",
    [
        (b'{"type":"track","event":"Order Completed","userId":"c-\xff\xfe"}', "not valid JSON"),
        ('{"type":"track","event":"Order Co', "not valid JSON"),
        ('[{"type":"track","event":"Order Completed","userId":"c-1"}]', "got list"),
        ("null", "got null"),
    ],
    ids=["invalid UTF-8", "truncated JSON", "a JSON array", "null"],
)
def test_a_stored_text_that_is_no_event_fails_alone_naming_the_problem(
    setup, antavo_standin, text, problem
):
    path, buffer = setup(("bad-1", text))

    result = cli("run", "inbound", "--settings", str(path))

    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert registered(antavo_standin) == sorted(f"o-{i}" for i in range(GOOD))
    bad = buffer.get_by_message_id("bad-1")
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert "bad-1" in bad.last_error and problem in bad.last_error


def test_the_dry_run_counts_the_deep_event_as_failing_and_plans_the_rest(setup, antavo_standin):
    path, buffer = setup(("deep-990", deep_order()))

    result = cli("run", "inbound", "--dry-run", "--settings", str(path))

    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert f"items pending {GOOD + 1}: would send {GOOD} Antavo event(s)" in result.output
    assert "would fail 1" in result.output and "more than 64 levels deep" in result.output
    assert antavo_standin.stats()["requests"] == 0
    assert buffer.counts()["pending"] == GOOD + 1


def test_the_preview_skips_the_newest_event_when_it_is_too_deep_and_says_so(setup):
    path, buffer = setup()
    store_raw(Path(buffer.url.removeprefix("sqlite:///")), "deep-990", deep_order())

    result = cli("mappings", "preview", "--settings", str(path))

    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert f"messageId o-{GOOD - 1}" in result.output  # the newest readable one is used
    assert "skipped 1 event(s) that cannot be read" in result.output
    assert "messageId 'deep-990'" in result.output and "64 levels" in result.output


def test_the_preview_of_a_too_deep_event_file_is_one_clear_error(setup, tmp_path):
    path, _ = setup()
    event = tmp_path / "deep.json"
    event.write_text(deep_order())

    result = cli("mappings", "preview", "--settings", str(path), "--event", str(event))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"--event {event}: nested more than 64 levels deep" in result.output


def test_the_dagster_preview_and_dry_run_jobs_report_the_deep_event_and_succeed(setup):
    path, buffer = setup()
    store_raw(Path(buffer.url.removeprefix("sqlite:///")), "deep-990", deep_order())
    defs = build_definitions(str(path))
    dry = {"ops": {"ingest_inbound_buffer": {"config": {"dry_run": True}}}}
    with dg.instance_for_test() as instance:
        preview = defs.resolve_job_def("mappings_preview_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        dry_run = defs.resolve_job_def("inbound_ingest_job").execute_in_process(
            run_config=dry, instance=instance, raise_on_error=False
        )
    assert preview.success and dry_run.success
    [output] = [e for e in preview.all_events if e.is_successful_output]
    text = output.event_specific_data.metadata["preview"].value
    assert "deep-990" in text and "64 levels" in text and f"o-{GOOD - 1}" in text
    [observed] = [
        e.event_specific_data.asset_observation.metadata
        for e in dry_run.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert observed["would_fail"].value == 1 and observed["would_send_events"].value == GOOD


def test_a_replayed_deep_event_fails_again_for_its_reason_without_a_traceback(
    setup, antavo_standin
):
    path, buffer = setup(("deep-990", deep_order()))
    assert cli("run", "inbound", "--settings", str(path)).exit_code == 1

    replay = cli("replay", "inbound", "--settings", str(path), "--filter", "levels deep")
    again = cli("run", "inbound", "--settings", str(path))

    assert replay.exit_code == 0 and "re-queued 1 failed inbound item(s)" in replay.output
    assert again.exit_code == 1 and "Traceback" not in again.output, again.output
    deep = buffer.get_by_message_id("deep-990")
    assert (deep.status, deep.attempts) == ("failed", 1) and "64 levels" in deep.last_error
    assert len(registered(antavo_standin)) == GOOD  # the good ones once, nothing resent


def test_on_a_postgresql_buffer_the_deep_event_fails_alone_too(
    write_settings, antavo_standin, pg_url
):
    values = {"base_url": antavo_standin.url, "buffer_url": pg_url, "mappings": [CHECKOUT]}
    path = write_settings(inbound=values)
    buffer = InboundBuffer(pg_url)
    buffer.add_many([order(i) for i in range(GOOD // 2)])
    buffer.add_row_groups([[("deep-990", deep_order())]])
    buffer.add_many([order(i) for i in range(GOOD // 2, GOOD)])

    result = cli("run", "inbound", "--settings", str(path))

    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert registered(antavo_standin) == sorted(f"o-{i}" for i in range(GOOD))
    deep = buffer.get_by_message_id("deep-990")
    assert (deep.status, deep.attempts) == ("failed", 1) and "64 levels" in deep.last_error
    buffer.close()
