"""Row dicts become typed Arrow columns: a column a row leaves out is null in that row."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

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


_ids = st.lists(st.text(max_size=6), max_size=5)
_cell = st.one_of(
    st.none(),
    _ids,  # a Python list
    _ids.map(lambda v: pa.array(v, pa.string())),  # an Arrow array, as request_row gives it
    st.tuples(_ids, st.integers(0, 3)).map(lambda p: pa.array(p[0], pa.string())[p[1] :]),
    _ids.map(lambda v: pa.array(v, pa.large_string())),  # another string type: cast
)


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(_cell, min_size=1, max_size=8))
def test_a_list_column_given_as_arrow_arrays_holds_what_python_lists_would(cells):
    """customer_ids may come as Arrow arrays (sliced or not), Python lists or None, mixed:
    the column is what the same values as Python lists make."""
    rows = [{"timestamp": NOW, "event_type": "track", "customer_ids": c} for c in cells]
    expected = [c.to_pylist() if isinstance(c, pa.Array) else c for c in cells]
    table = to_arrow("outbound_log", rows)
    assert table["customer_ids"].type == pa.list_(pa.string())
    assert table["customer_ids"].to_pylist() == expected
