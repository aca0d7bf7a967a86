"""Which settings a run used: its settings hash in its `sync_runs` row and as a run tag, from a
real Dagster run and a real CLI run, so "what changed?" has an answer."""

from __future__ import annotations

import dagster as dg
from click.testing import CliRunner

from segment_sync.cli.main import main
from segment_sync.definitions import build_definitions
from segment_sync.defs.tags import SETTINGS_HASH_TAG
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync.settings.hash import settings_hash


def _hash_rows(logs_dir: str) -> dict[str, str | None]:
    with connect(logs_dir) as con:
        return dict(con.execute("SELECT run_id, settings_hash FROM sync_runs").fetchall())


def _outbound_run(path) -> tuple[str, str]:
    """One Dagster outbound run that delivers an event: (run id, its settings hash tag)."""
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {})]
    )
    with dg.instance_for_test() as instance:
        job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
        result = job.execute_in_process(instance=instance)
        assert result.success
        return result.run_id, instance.get_run_by_id(result.run_id).tags[SETTINGS_HASH_TAG]


def test_a_dagster_run_records_its_settings_hash_in_sync_runs_and_as_a_tag(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    expected = settings_hash(load_settings(path))
    run_id, tag = _outbound_run(path)
    assert tag == expected
    assert _hash_rows(load_settings(path).logs.dir)[run_id] == expected


def test_runs_before_and_after_a_settings_change_record_different_hashes(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    before, _ = _outbound_run(path)
    path = write_settings(
        outbound={"base_url": segment_standin.url},
        maintenance={"checks": {"outbound_error_rate_max": 0.5}},
    )
    after, _ = _outbound_run(path)
    rows = _hash_rows(load_settings(path).logs.dir)
    assert rows[before] != rows[after]
    assert rows[after] == settings_hash(load_settings(path))


def test_a_cli_run_records_its_settings_hash(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {})]
    )
    result = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert result.exit_code == 0, result.output
    [recorded] = _hash_rows(load_settings(path).logs.dir).values()
    assert recorded == settings_hash(load_settings(path))


def test_settings_check_prints_the_hash(write_settings):
    path = write_settings()
    result = CliRunner().invoke(main, ["settings", "check", "--settings", str(path)])
    assert result.exit_code == 0, result.output
    assert f"settings hash: {settings_hash(load_settings(path))}" in result.output
