"""Inbound failures that are not the data's fault, and their repair: a wrong credential, a mapping
fixed after the fact (replay), a full log disk. Real stand-in over loopback, real SQLite, the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

CHECKOUT = {
    "name": "Order completed",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {
        "action": {"@literal": "checkout"},
        "data": {"mid": {"@path": "$.messageId"}, "total": {"@path": "$.properties.total"}},
    },
}


def orders(n: int, prefix: str = "o") -> list[dict]:
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": f"{prefix}-{i}",
            "userId": f"c-{i % 37}",
            "properties": {"total": i},
        }
        for i in range(n)
    ]


@pytest.fixture
def setup(write_settings, antavo_standin, tmp_path):
    def make(logs: dict | None = None, **inbound):
        values = {
            "base_url": antavo_standin.url,
            "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
            "mappings": [CHECKOUT],
            "max_retries": 1,
            **inbound,
        }
        path = write_settings(inbound=values, **({"logs": logs} if logs else {}))
        return path, InboundBuffer(values["buffer_url"])

    return make


def run_inbound(path: Path):
    return CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])


def registered_mids(antavo_standin) -> list[str]:
    return [e["data"]["mid"] for e in antavo_standin.events]


def test_wrong_secret_fails_the_run_names_the_setting_and_leaves_every_item_pending(
    setup, antavo_standin, monkeypatch, tmp_path
):
    path, buffer = setup()
    buffer.add_many(orders(1000))
    monkeypatch.setenv("ANTAVO_API_SECRET", "a-wrong-secret-that-is-long-enough")

    failed = run_inbound(path)

    assert failed.exit_code == 1
    assert "inbound.api_secret_env ($ANTAVO_API_SECRET)" in failed.output
    assert (
        "inbound.api_key_env ($ANTAVO_API_KEY)" in failed.output
        and "inbound.stack" in failed.output
    )
    assert "a-wrong-secret" not in failed.output and "Traceback" not in failed.output
    assert buffer.counts()["pending"] == 1000 and buffer.counts()["failed"] == 0
    assert {r.attempts for r in buffer.items(limit=1000)} == {0}  # no attempt burned
    assert {r.claimed_by for r in buffer.items(limit=1000)} == {None}  # released at once
    # The run stopped: only the requests already in flight (max_in_flight 8) met the 401, not 20.
    assert antavo_standin.stats()["requests_by_status"].keys() == {"401"}
    assert antavo_standin.stats()["requests"] <= 8
    assert antavo_standin.events == []

    monkeypatch.setenv("ANTAVO_API_SECRET", ANTAVO_SECRET)
    fixed = run_inbound(path)

    assert fixed.exit_code == 0, fixed.output
    assert buffer.counts()["done"] == 1000 and buffer.counts()["failed"] == 0
    assert sorted(registered_mids(antavo_standin)) == sorted(f"o-{i}" for i in range(1000))
    store = LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db")
    assert len(store.events_after(0, 10**9, 2000)) == 1000


def test_a_run_stops_sending_after_the_first_401(setup, antavo_standin, monkeypatch):
    path, buffer = setup(max_in_flight=1, chunk_size=1000)
    buffer.add_many(orders(500))  # 10 requests of 50
    monkeypatch.setenv("ANTAVO_API_KEY", "a-wrong-api-key-0000")

    assert run_inbound(path).exit_code == 1
    assert antavo_standin.stats()["requests"] == 1
    assert buffer.counts()["pending"] == 500


def test_replay_inbound_requeues_items_a_fixed_mapping_then_delivers(
    setup, antavo_standin, tmp_path
):
    broken = {**CHECKOUT, "fields": {**CHECKOUT["fields"], "customer": {"@path": "$.nobody"}}}
    path, buffer = setup(mappings=[broken], max_attempts=1)
    buffer.add_many(orders(20))
    buffer.add_many([{"type": "track", "event": "Order Completed", "messageId": "x-1"}])
    first = run_inbound(path)
    assert first.exit_code == 1 and buffer.counts()["failed"] == 21
    path, _ = setup(mappings=[CHECKOUT], max_attempts=1)  # the mapping is fixed

    narrow = CliRunner().invoke(
        main, ["replay", "inbound", "--settings", str(path), "--filter", '"O-1']
    )
    assert narrow.exit_code == 0, narrow.output
    assert "re-queued 11 failed inbound item(s)" in narrow.output  # o-1, o-10 .. o-19
    rest = CliRunner().invoke(main, ["replay", "inbound", "--settings", str(path), "--since", "1h"])
    assert "re-queued 10 failed inbound item(s)" in rest.output
    assert buffer.counts()["failed"] == 0 and buffer.counts()["pending"] == 21
    assert {r.attempts for r in buffer.items(limit=100)} == {0}

    second = run_inbound(path)

    # x-1 has no userId: it fails again, for the data's reason, and only it.
    assert second.exit_code == 1
    assert buffer.counts()["done"] == 20 and buffer.counts()["failed"] == 1
    assert sorted(registered_mids(antavo_standin)) == sorted(f"o-{i}" for i in range(20))


def test_replay_inbound_with_an_unreadable_time_is_a_one_line_error(setup):
    path, _ = setup()
    result = CliRunner().invoke(
        main, ["replay", "inbound", "--settings", str(path), "--since", "yesterday-ish"]
    )
    assert result.exit_code != 0
    assert "cannot read time 'yesterday-ish'" in result.output and "Traceback" not in result.output


@pytest.fixture
def small_logs_dir(tmp_path):
    mount = tmp_path / "logs"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of `directory`, leaving about `leave_bytes` free."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        while True:
            stat = os.statvfs(directory)
            free = stat.f_bavail * stat.f_frsize - leave_bytes
            if free <= 0:
                return filler
            out.write(b"\0" * min(free, 1 << 20))
            out.flush()


def test_full_log_disk_fails_the_run_marks_nothing_unlogged_and_a_rerun_converges(
    setup, antavo_standin, small_logs_dir
):
    path, buffer = setup(logs={"dir": str(small_logs_dir)}, max_in_flight=2)
    LogWriter(small_logs_dir)  # the layout exists before the disk fills
    buffer.add_many(orders(2000))
    filler = fill(small_logs_dir, leave_bytes=200_000)

    failed = run_inbound(path)

    assert failed.exit_code == 1, failed.output
    assert f"logs.dir ({small_logs_dir})" in failed.output
    assert "No space left on device" in failed.output and "Traceback" not in failed.output
    counts = buffer.counts()
    print(f"full disk: {counts}; output: {failed.output}")
    assert counts["pending"] > 0 and counts["failed"] == 0
    done = {r.message_id for r in buffer.items("done", limit=5000)}
    logged = items_logged_done(small_logs_dir)
    assert done <= logged  # nothing done without its inbound_items row
    assert {r.claimed_by for r in buffer.items("pending", limit=5000)} == {None}

    filler.unlink()
    rerun = run_inbound(path)

    assert rerun.exit_code == 0, rerun.output
    assert buffer.counts()["done"] == 2000
    assert items_logged_done(small_logs_dir) == {f"o-{i}" for i in range(2000)}
    assert set(registered_mids(antavo_standin)) == {f"o-{i}" for i in range(2000)}
    runs = connect(small_logs_dir).execute("SELECT status FROM sync_runs").fetchall()
    assert ("success",) in runs


def items_logged_done(logs_dir: Path) -> set[str]:
    db = connect(logs_dir)
    rows = db.execute("SELECT message_id FROM inbound_items WHERE outcome = 'done'").fetchall()
    return {mid for (mid,) in rows}


def test_dagster_run_fails_on_a_wrong_key_naming_the_setting_then_replay_job_requeues(
    setup, antavo_standin, monkeypatch
):
    import dagster as dg

    from segment_sync.definitions import build_definitions

    path, buffer = setup(max_attempts=1)
    buffer.add_many(orders(3))
    buffer.add_many([{"type": "track", "event": "Order Completed", "messageId": "x-1"}])
    monkeypatch.setenv("ANTAVO_API_KEY", "a-wrong-api-key-0000")
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def("inbound_ingest_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        [failure] = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
        error = failure.step_failure_data.error
        after_401 = buffer.counts()
        monkeypatch.setenv("ANTAVO_API_KEY", ANTAVO_KEY)
        fixed = build_definitions(str(path)).resolve_job_def("inbound_ingest_job")
        second = fixed.execute_in_process(instance=instance, raise_on_error=False)
        replay = defs.resolve_job_def("inbound_replay_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"requeue_failed_inbound_items": {"config": {"filter": "x-1"}}}},
        )
    assert not run.success
    assert "inbound.api_key_env ($ANTAVO_API_KEY)" in error.message
    assert "a-wrong-api-key" not in error.message
    assert error.cls_name == "Failure"  # an expected failure (dg.Failure), not a crash
    assert after_401 == {"pending": 3, "done": 0, "failed": 1, "unknown": 0}  # x-1: no userId
    assert second.success  # the 3 pending items delivered; x-1 stays failed until replayed
    assert buffer.counts()["done"] == 3
    assert replay.success and replay.output_for_node("requeue_failed_inbound_items") == 1
    assert buffer.get_by_message_id("x-1").status == "pending"
