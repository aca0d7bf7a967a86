"""`logs outbound|inbound` searches the newest days first, each day once, in the order of one scan."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from segment_sync.logs.browse import filtered_log_sql, query_log
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.logs.test_log_store import outbound_request

# Days back from today, around each window's edge (1, 7, 30 days) and one ahead (a fast clock).
DAYS_BACK = [-1, 0, 1, 2, 6, 7, 8, 29, 30, 31, 45]


def _write_rows(logs_dir: Path) -> None:
    """Three requests a day on DAYS_BACK, one of them for customer c-7; the same times twice."""
    midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    rows = []
    for back in DAYS_BACK:
        for k, hour in enumerate((1, 12, 12)):  # two rows share a timestamp: identifier decides
            rows.append(
                outbound_request(
                    timestamp=midnight - timedelta(days=back) + timedelta(hours=hour),
                    identifier=f"req-{back}-{k}",
                    customer_id=None,
                    customer_ids=["c-7", "c-8"] if k == 1 else ["c-8"],
                )
            )
    LogWriter(logs_dir).write("outbound_log", rows)


@pytest.mark.parametrize("filter_text", ["", "Customer ID is c-7", "Customer ID is c-9"])
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 11, 20, 32, 40])
def test_newest_first_windows_return_the_rows_of_one_scan_each_once(
    tmp_path: Path, filter_text: str, limit: int
) -> None:
    _write_rows(tmp_path)
    columns = ["timestamp", "identifier"]
    sql, params = filtered_log_sql("outbound", columns, filter_text, None, None)
    with connect(tmp_path) as con:
        one_scan = con.execute(f"{sql} LIMIT ?", [*params, limit + 1]).fetchall()
        got = query_log(con, "outbound", filter_text, None, None, limit)

    assert [(row["timestamp"], row["identifier"]) for row in got] == one_scan
