"""Whatever a client stored in a text column reads into Arrow as exactly its text, or makes the
chunk go row by row (None): never as other text, never as bytes, never dropped.

What SQLite holds is read back apart (typeof and the stored bytes), so the expected text is
decided here, not by the reader under test.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from segment_sync.loyalty import arrow_reader
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.loyalty.tables import loyalty_events, profile_changes
from segment_sync_tests.outbound.raw_rows import Blob, insert_raw

UNREADABLE = object()  # the Arrow read must give None
TABLES = {Stream.EVENTS: loyalty_events, Stream.PROFILES: profile_changes}
TEXT_COLUMNS = {
    stream: [c.name for c in table.columns if c.name != "id"] for stream, table in TABLES.items()
}

# As clients store them: text (a str), any bytes stored as TEXT (UTF-8 or not), a BLOB,
# numbers (a TEXT column makes them text; occurred_at, NUMERIC, keeps them numbers), NULL.
stored_values = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"])),
    st.binary(max_size=12),
    st.binary(max_size=12).map(Blob),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.none(),
)
stream_and_column = st.sampled_from([(s, c) for s, cs in TEXT_COLUMNS.items() for c in cs])


def expected_text(path: Path, table: str, column: str, row_id: int) -> object:
    """The stored value's text, None for NULL, or UNREADABLE (a number, bytes not UTF-8)."""
    with sqlite3.connect(path) as con:
        kind, raw = con.execute(
            f"SELECT typeof({column}), CAST({column} AS BLOB) FROM {table} WHERE id = ?", [row_id]
        ).fetchone()
    if kind == "null":
        return None
    if kind not in ("text", "blob"):
        return UNREADABLE
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return UNREADABLE


@pytest.fixture(scope="module")
def store_path():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "loyalty.db"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=stream_and_column, value=stored_values)
@example(where=(Stream.EVENTS, "data"), value=b"\xc3")  # half a character, then the next row's
@example(where=(Stream.EVENTS, "action"), value=Blob(b"\xa9"))
@example(where=(Stream.EVENTS, "occurred_at"), value="2026")  # NUMERIC: stored as an integer
@example(where=(Stream.PROFILES, "origin"), value=b"\xed\xa0\x80")  # a surrogate, UTF-8 encoded
@example(where=(Stream.EVENTS, "customer_id"), value=b"c-\x00-\xc3\xa9")
def test_a_stored_value_reads_as_its_exact_text_or_the_chunk_goes_row_by_row(
    store_path, monkeypatch, where, value
):
    stream, column = where
    table = TABLES[stream]
    assume(value is not None or table.c[column].nullable)
    monkeypatch.setattr(arrow_reader, "SLICE_ROWS", 3)
    store = LoyaltyStore(f"sqlite:///{store_path}")
    try:
        before = store.newest_id(stream)
        ids = [insert_raw(store, table), insert_raw(store, table, **{column: value})]
        # Not UTF-8 alone, but UTF-8 after b"\xc3": read in the odd row's slice, beside it.
        ids.append(insert_raw(store, table, **{column: b"\xa9-after"}))
        ids.append(insert_raw(store, table))
        chunk = store.arrow_after(stream, before, ids[1], 10)  # the odd row last
        whole = store.arrow_after(stream, before, ids[-1], 10)
        expected = expected_text(store_path, table.name, column, ids[1])
    finally:
        store.close()
    assert whole is None
    if expected is UNREADABLE:
        assert chunk is None
        return
    assert chunk is not None
    assert chunk.schema == arrow_reader.SCHEMAS[table.name]
    assert chunk["id"].to_pylist() == ids[:2]
    good = expected_text(store_path, table.name, column, ids[0])
    assert chunk[column].to_pylist() == [good, expected]
