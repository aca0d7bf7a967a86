"""A SQLite chunk is read in slices (bounded Python rows) and reads as if read at once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from segment_sync.loyalty import arrow_reader
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch):
    monkeypatch.setattr(arrow_reader, "SLICE_ROWS", 3)
    store = LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db")
    yield store
    store.close()


def test_a_chunk_of_several_slices_holds_its_rows_in_order_up_to_the_limit(sqlite_store):
    ids = sqlite_store.append_events([NewEvent(f"c-{i}", "point_add", {"i": i}) for i in range(11)])
    chunk = sqlite_store.arrow_after(Stream.EVENTS, ids[0], ids[-1], 8)
    assert chunk["id"].to_pylist() == ids[1:9]
    assert chunk["customer_id"].to_pylist() == [f"c-{i}" for i in range(1, 9)]
    assert chunk.column("id").num_chunks == 1  # one array per column, as the builder expects


def test_a_chunk_stops_at_its_upper_bound_inside_a_slice(sqlite_store):
    ids = sqlite_store.append_events([NewEvent(f"c-{i}", "point_add", {}) for i in range(10)])
    assert sqlite_store.arrow_after(Stream.EVENTS, 0, ids[4], 100)["id"].to_pylist() == ids[:5]
    assert sqlite_store.arrow_after(Stream.EVENTS, ids[-1], ids[-1], 100).num_rows == 0


def test_a_row_arrow_cannot_carry_in_a_later_slice_sends_the_whole_chunk_row_by_row(
    sqlite_store,
):
    ids = sqlite_store.append_events([NewEvent(f"c-{i}", "point_add", {}) for i in range(7)])
    with sqlite_store.engine.begin() as conn:  # SQLite keeps whatever type it is given
        conn.exec_driver_sql(f"UPDATE loyalty_events SET action = x'ff00' WHERE id = {ids[5]}")
    assert sqlite_store.arrow_after(Stream.EVENTS, 0, ids[-1], 100) is None
    assert isinstance(sqlite_store.arrow_after(Stream.EVENTS, 0, ids[2], 100), pa.Table)
