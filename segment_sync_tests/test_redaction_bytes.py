"""Request bodies logged as bytes: Redactor.body redacts as Redactor.text does, and _wrapped_text equals a copied column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segment_sync.logs.arrow_rows import _wrapped_text, split_by_day
from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor

pieces = st.sampled_from(
    ["wk_live", "wk_live_abc", "abc", "://", "@", ":", "/", "u:p@h", "ä", "é", "\u2028", " ",
     "\u00a0", "postgresql://u:", '"', ",", "x", "💥", "[REDACTED]", "REDA"]
)  # fmt: skip
texts = st.lists(st.one_of(pieces, st.text(max_size=4)), max_size=30).map("".join)
secret_lists = st.lists(st.one_of(pieces, st.text(min_size=3, max_size=8)), max_size=4)


@settings(max_examples=500, deadline=None)
@given(secrets=secret_lists, text=texts)
def test_body_is_text(secrets: list[str], text: str) -> None:
    try:
        text.encode()
        for s in secrets:
            s.encode()
    except UnicodeEncodeError:
        return
    redactor = Redactor(secrets)
    assert redactor.body(text.encode()) == redactor.text(text).encode()


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), texts, texts.map(str.encode)), max_size=8))
def test_wrapped_text_is_a_copied_column(values: list) -> None:
    try:
        expected = pa.array(
            [v.decode() if isinstance(v, bytes) else v for v in values], type=pa.string()
        )
    except UnicodeEncodeError:
        return
    wrapped = _wrapped_text(values)
    assert wrapped.to_pylist() == expected.to_pylist()
    assert wrapped.null_count == expected.null_count
    assert wrapped.type == pa.string()


def test_bytes_bodies_across_two_days_and_a_parquet_round_trip(tmp_path) -> None:
    from segment_sync_tests.logs.test_log_store import outbound_request

    t0 = datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC)
    rows = [outbound_request(request_body=f"body {i} ä".encode(), attempt=i) for i in range(1, 5)]
    for i, row in enumerate(rows):
        for key, value in list(row.items()):
            if isinstance(value, datetime):
                row[key] = t0 + timedelta(seconds=i)
    with LogWriter(tmp_path) as logs:
        logs.extend("outbound_log", rows)
    got = sorted(
        (r["attempt"], r["request_body"])
        for path in (tmp_path / "outbound_log").glob("date=*/*.parquet")
        for r in pq.read_table(path).to_pylist()
    )
    assert got == [(i, f"body {i} ä") for i in range(1, 5)]
    assert split_by_day  # imported for the two-day split above


@settings(max_examples=500, deadline=None)
@given(secrets=secret_lists, text=texts, cut=st.tuples(st.integers(0, 60), st.integers(0, 60)))
@example(secrets=[], text='{"u":"postgresql://u:pw@h/db"}', cut=(0, 30))
@example(secrets=["wk_live"], text='["a","wk_live_abc"]', cut=(5, 12))
def test_a_clean_text_has_clean_parts(secrets: list[str], text: str, cut: tuple[int, int]) -> None:
    """`clean` holds only where `text` changes nothing, in the whole and in every part of it."""
    redactor = Redactor(secrets)
    part = text[min(cut) : max(cut)]
    if redactor.clean(text):
        assert redactor.text(text) == text
        assert redactor.clean(part) and redactor.text(part) == part
    if redactor.text(text) != text:
        assert not redactor.clean(text)
