"""Every run ends with the analysts' DuckDB file in place, whatever the run's outcome."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from segment_sync.cli import main
from segment_sync.loyalty.demo import ACTIONS, seed
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings


def _analysts_db(settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(Path(settings.logs.dir) / "segment_sync.duckdb"), read_only=True)


def test_the_first_run_creates_the_analysts_duckdb_file_with_its_views(
    write_settings, segment_standin
):
    every_action = {"base_url": segment_standin.url, "event_sync": list(ACTIONS)}
    settings = load_settings(write_settings(outbound=every_action))
    seed(LoyaltyStore(settings.loyalty_store.url), 30, 5, 5)
    assert not (Path(settings.logs.dir) / "segment_sync.duckdb").exists()
    result = CliRunner().invoke(main, ["run", "outbound"])
    assert result.exit_code == 0, result.output
    with _analysts_db(settings) as con:
        assert con.execute("SELECT count(*) FROM sync_runs").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM outbound_messages").fetchone() == (35,)


def test_a_failed_first_run_creates_it_too(write_settings):
    # Nothing listens on port 9 (discard): Segment is unreachable and the run fails.
    settings = load_settings(
        write_settings(
            outbound={
                "base_url": "http://127.0.0.1:9",
                "max_retries": 0,
                "event_sync": list(ACTIONS),
            }
        )
    )
    seed(LoyaltyStore(settings.loyalty_store.url), 3, 0, 1)
    result = CliRunner().invoke(main, ["run", "outbound"])
    assert result.exit_code != 0, result.output
    with _analysts_db(settings) as con:
        assert con.execute("SELECT status FROM sync_runs").fetchall() == [("failure",)]
