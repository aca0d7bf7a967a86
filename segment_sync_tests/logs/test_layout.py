"""The log layout's typed empty files: made, kept current, and remade when damaged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from segment_sync.logs.layout import SCHEMA_PARTITION, SUMMARY_SUFFIX, table_dir
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.disks import damage_file
from segment_sync_tests.logs.test_summaries import requests


@pytest.mark.parametrize("name", ["_schema.parquet", f"_schema{SUMMARY_SUFFIX}"])
@pytest.mark.parametrize("how", ["truncated", "scrambled-pages"])
def test_a_damaged_typed_empty_file_is_rewritten_not_failing_every_writer_and_view(
    tmp_path: Path, name: str, how: str
) -> None:
    """They hold no rows (logs check does not list them): a damaged one is simply made again,
    where it failed every log writer and daily_summary (and the check found nothing)."""
    LogWriter(tmp_path).write("outbound_log", requests(datetime(2024, 3, 1, tzinfo=UTC), 5, 1))
    damage_file(table_dir(tmp_path, "outbound_log") / SCHEMA_PARTITION / name, how)
    writer = LogWriter(tmp_path)
    writer.write("outbound_log", requests(datetime(2024, 3, 1, tzinfo=UTC), 5, 2))
    with connect(tmp_path) as con:
        (requests_logged,) = con.execute(
            "SELECT sum(requests) FROM daily_summary WHERE direction = 'outbound'"
        ).fetchone()
    assert requests_logged == 10
