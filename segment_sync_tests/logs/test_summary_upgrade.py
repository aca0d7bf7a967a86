"""An upgrade that changes the summaries' fingerprint: the views of the code before it (an
analyst's open session, a process not yet upgraded) and the refreshed analysts' file still work."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb

from segment_sync.logs.layout import SCHEMA_PARTITION, SUMMARY_SUFFIX, ensure_layout
from segment_sync.logs.maintenance import apply_retention, compact
from segment_sync.logs.read_only import open_read_only
from segment_sync.logs.views import ensure_analytics_db, view_sql
from segment_sync_tests.disks import break_disk
from segment_sync_tests.logs.test_summaries import DAY1, DAYS, aggregated, day_dir, write_days

OLD_SUFFIX = ".summary"  # the name before fingerprints (main before 0f94456)


def _as_before_the_upgrade(logs_dir: Path) -> None:
    """The layout the code before fingerprints left: every summary named `<file>.summary`."""
    write_days(logs_dir)
    compact(logs_dir, "outbound_log")
    for path in (logs_dir / "outbound_log").glob(f"date=*/*{SUMMARY_SUFFIX}"):
        path.rename(path.with_name(path.name.removesuffix(SUMMARY_SUFFIX) + OLD_SUFFIX))


def _old_session(logs_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB session holding the views the code before fingerprints defined (as an analyst's
    session on the old `segment_sync.duckdb` does: views are SQL text, fixed when made)."""
    con = duckdb.connect()
    for statement in view_sql(logs_dir):
        con.execute(statement.replace(SUMMARY_SUFFIX, OLD_SUFFIX))
    return con


def test_a_session_on_the_old_views_keeps_daily_summary_across_the_upgrade(
    tmp_path: Path,
) -> None:
    """ensure_analytics_db promises a session on the old file keeps working; the old views'
    summary glob must still match a file once the upgrade's maintenance deleted the old ones."""
    _as_before_the_upgrade(tmp_path)
    old = _old_session(tmp_path)
    expected = aggregated(tmp_path)
    assert old.execute("SELECT * FROM daily_summary").fetchall() == expected
    ensure_layout(tmp_path)  # the upgraded code's first writer or reader
    compact(tmp_path, "outbound_log")  # its first maintenance: the old summaries go
    assert not list((tmp_path / "outbound_log").glob(f"date=*/*{OLD_SUFFIX}[!-]*"))
    assert old.execute("SELECT * FROM daily_summary").fetchall() == expected


def test_the_old_analysts_file_works_after_the_upgraded_codes_first_run(tmp_path: Path) -> None:
    """A run's end does not refresh an existing analysts' file (analytics_db_after_a_run): until
    the hourly maintenance does, its old views must still bind."""
    write_days(tmp_path)  # no day summarised yet: only the typed empty summary matches
    for path in (tmp_path / "outbound_log" / SCHEMA_PARTITION).glob(f"*{SUMMARY_SUFFIX}"):
        path.rename(path.with_name(path.name.removesuffix(SUMMARY_SUFFIX) + OLD_SUFFIX))
    old = _old_session(tmp_path)
    expected = aggregated(tmp_path)
    ensure_layout(tmp_path)
    assert old.execute("SELECT * FROM daily_summary").fetchall() == expected


def test_the_analysts_file_refreshed_after_the_upgrade_reads_every_day(tmp_path: Path) -> None:
    _as_before_the_upgrade(tmp_path)
    expected = aggregated(tmp_path)
    path = ensure_analytics_db(tmp_path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT * FROM daily_summary").fetchall() == expected
    compact(tmp_path, "outbound_log")  # old summaries deleted, the days summarised again
    assert list(day_dir(tmp_path, 0).glob(f"*{SUMMARY_SUFFIX}"))
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT * FROM daily_summary").fetchall() == expected


def test_retention_drops_a_day_holding_old_and_new_summaries(tmp_path: Path) -> None:
    _as_before_the_upgrade(tmp_path)
    directory = day_dir(tmp_path, 0)
    (only,) = directory.glob("*.parquet")
    only.with_name(only.name + OLD_SUFFIX).write_bytes(b"old")
    only.with_name(only.name + ".summary-0123456789ab").write_bytes(b"other code")
    apply_retention(tmp_path, "outbound_log", DAY1 + timedelta(days=1))
    assert not directory.exists()


def test_an_upgraded_reader_of_a_read_only_mount_the_old_writers_keep_reads_every_view(
    small_tmpfs: Path,
) -> None:
    """open_read_only cannot write this code's typed empty summary on a read-only mount whose
    writers run the code before it: daily_summary is then aggregated from every row, and the
    other views still open (a glob matching nothing failed them all)."""
    logs = small_tmpfs / "logs"
    write_days(logs)
    expected = aggregated(logs)
    compact(logs, "outbound_log")
    for path in (logs / "outbound_log").glob(f"date=*/*{SUMMARY_SUFFIX}"):
        path.rename(path.with_name(path.name.removesuffix(SUMMARY_SUFFIX) + OLD_SUFFIX))
    repair = break_disk(small_tmpfs, "read-only")
    try:
        con = open_read_only(logs)
        try:
            assert con.execute("SELECT * FROM daily_summary").fetchall() == expected
            assert con.execute("SELECT count(*) FROM outbound_log").fetchone() == (DAYS * 80,)
        finally:
            con.close()
    finally:
        repair()


def test_the_fingerprint_is_the_same_in_another_python_process() -> None:
    """Every process (runs, maintenance, the analysts' Python) must name summaries alike: no
    hash randomisation, no ordering that varies by run."""
    code = "from segment_sync.logs.layout import SUMMARY_SUFFIX; print(SUMMARY_SUFFIX)"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert seen == {SUMMARY_SUFFIX}
