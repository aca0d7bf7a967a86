"""Row dicts become typed Arrow columns: a column a row leaves out is null in that row."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from segment_sync.logs.arrow_rows import to_arrow

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_a_row_without_an_optional_column_is_null_there():
    rows = [
        {"timestamp": NOW, "outcome": "done", "error": None, "message_id": "m-1"},
        {"timestamp": NOW, "outcome": "failed", "error": "HTTP 400"},
    ]
    table = to_arrow("inbound_items", rows)
    assert table["message_id"].to_pylist() == ["m-1", None]
    assert table["error"].to_pylist() == [None, "HTTP 400"]


def test_a_mapping_with_defaults_gives_its_stored_values_not_its_defaults():
    row = defaultdict(lambda: "made up", {"timestamp": NOW, "outcome": "done"})
    table = to_arrow("inbound_items", [row])
    assert table["error"].to_pylist() == [None]
    assert "error" not in row  # reading the row did not add to it
