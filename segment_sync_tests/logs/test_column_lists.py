"""Rows queued as a list per column (LogWriter.extend_lists): checked at once, typed when written."""

from __future__ import annotations

from pathlib import Path

import pytest

from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.logs.views import connect
from segment_sync.redaction import REDACTED, Redactor
from segment_sync_tests.disks import fill_disk
from segment_sync_tests.logs.test_log_store import T0, inbound_request, scalar


def items(count: int, first: int = 0, **more: list) -> dict[str, list]:
    """`count` inbound_items rows as lists per column."""
    ids = range(first, first + count)
    return {
        "timestamp": [T0] * count,
        "buffer_item_id": list(ids),
        "outcome": ["done"] * count,
        **more,
    }


def test_lists_rows_and_several_batches_are_written_as_one_file_in_order(tmp_path: Path) -> None:
    logs = LogWriter(tmp_path)
    logs.extend_lists("inbound_items", items(2, message_id=["m0", "m1"]))
    logs.extend("inbound_items", [{"timestamp": T0, "outcome": "failed", "buffer_item_id": 9}])
    logs.extend_lists("inbound_items", items(3, first=2, error=[None, "bad", None]))
    assert logs.pending("inbound_items") == 6
    (path,) = logs.flush()
    with connect(tmp_path) as con:
        got = con.execute(
            "SELECT buffer_item_id, outcome, message_id, error FROM inbound_items ORDER BY 1"
        ).fetchall()
    assert got == [
        (0, "done", "m0", None),
        (1, "done", "m1", None),
        (2, "done", None, None),
        (3, "done", None, "bad"),
        (4, "done", None, None),
        (9, "failed", None, None),
    ]
    assert logs.pending("inbound_items") == 0


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({**items(1), "colour": ["red"]}, "unknown column 'colour'"),
        ({"timestamp": [T0], "buffer_item_id": [1]}, "missing column 'outcome'"),
        (items(2, message_id=["m0"]), "columns differ in length"),
    ],
)
@pytest.mark.parametrize("method", ["extend_lists", "extend_columns"])
def test_a_malformed_batch_is_refused_at_once_naming_the_problem(
    tmp_path: Path, columns: dict, problem: str, method: str
) -> None:
    """Lists converted at the flush or columns converted now: one check, at once, for both."""
    logs = LogWriter(tmp_path)
    with pytest.raises(ValueError, match=problem):
        getattr(logs, method)("inbound_items", columns)
    assert logs.pending("inbound_items") == 0


def test_a_value_outside_the_vocabulary_fails_the_flush_naming_the_column(tmp_path: Path) -> None:
    logs = LogWriter(tmp_path)
    logs.extend_lists("inbound_items", {**items(1), "outcome": ["Done"]})
    with pytest.raises(ValueError, match=r"inbound_items.outcome: 'Done'.*1 queued"):
        logs.flush()


def test_text_in_lists_is_masked_by_the_writer(tmp_path: Path) -> None:
    logs = LogWriter(tmp_path, redactor=Redactor(["s3cret"]))
    logs.extend_lists("inbound_items", items(2, customer_id=["c-s3cret", "c1"]))
    logs.extend("inbound_log", [inbound_request()])
    logs.flush()
    with connect(tmp_path) as con:
        got = con.execute("SELECT customer_id FROM inbound_items ORDER BY buffer_item_id")
        assert got.fetchall() == [(f"c-{REDACTED}",), ("c1",)]


@pytest.mark.parametrize("durable", [True, False])  # tables written at once; in turn
def test_on_a_full_disk_the_lists_wait_for_the_next_flush(small_tmpfs: Path, durable: bool) -> None:
    logs = LogWriter(small_tmpfs / "logs", durable=durable)
    logs.extend("inbound_log", [inbound_request()])
    filler = fill_disk(small_tmpfs)
    logs.extend_lists("inbound_items", items(1500, message_id=[f"m{i}" for i in range(1500)]))
    with pytest.raises(LogWriteError, match="No space left on device"):
        logs.flush()
    assert logs.pending("inbound_items") == 1500

    filler.unlink()
    logs.flush()
    with connect(small_tmpfs / "logs") as con:
        assert scalar(con, "SELECT count(DISTINCT message_id) FROM inbound_items") == 1500
        assert scalar(con, "SELECT count(*) FROM inbound_log") == 1
