"""Log files are written a page at a time: a chunk's request bodies are not held over and over."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from segment_sync.logs import layout
from segment_sync.logs.maintenance import compact
from segment_sync.logs.store import LogWriter, to_arrow
from segment_sync_tests.logs.test_log_store import inbound_request, message, outbound_request

BODY = '{"batch": [' + ",".join(['{"type": "track"}'] * 30_000) + "]}"  # ~540 KB, as sent


def test_a_batch_of_request_bodies_is_one_body_and_small_rows_go_a_thousand_at_a_time():
    bodies = to_arrow("outbound_log", [outbound_request(request_body=BODY)] * 11)
    messages = to_arrow("outbound_messages", [message(f"m-{i}") for i in range(20_000)])
    assert layout.parquet_options(bodies)["write_batch_size"] == 1
    assert layout.parquet_options(messages)["write_batch_size"] == layout.MAX_BATCH_ROWS


def test_bodies_have_no_min_max_statistics_and_read_back_whole(tmp_path):
    with LogWriter(tmp_path) as logs:
        logs.extend(
            "outbound_log", [outbound_request(request_body=BODY, attempt=i) for i in (1, 2)]
        )
    (path,) = (tmp_path / "outbound_log").glob("date=2*/*.parquet")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    stats = {
        meta.column(i).path_in_schema: meta.column(i).statistics for i in range(meta.num_columns)
    }
    assert stats["request_body"] is None and stats["response_body"] is None
    assert stats["attempt"].has_min_max and (stats["attempt"].min, stats["attempt"].max) == (1, 2)
    assert pq.read_table(path)["request_body"].to_pylist() == [BODY, BODY]


def test_a_request_body_given_as_utf8_bytes_is_logged_as_its_text(tmp_path):
    text = BODY.replace("track", "träck")
    with LogWriter(tmp_path) as logs:
        logs.extend(
            "outbound_log",
            [
                outbound_request(request_body=text.encode(), attempt=1),
                outbound_request(request_body=None, attempt=2),
                outbound_request(request_body="as text", attempt=3),
            ],
        )
    (path,) = (tmp_path / "outbound_log").glob("date=2*/*.parquet")
    assert pq.read_table(path).sort_by("attempt")["request_body"].to_pylist() == [
        text,
        None,
        "as text",
    ]


def test_a_request_body_given_as_bytes_is_wrapped_where_it_lies_not_copied():
    rows = [outbound_request(request_body=b, attempt=i) for i, b in enumerate(("a", b"b", None))]
    column = to_arrow("outbound_log", rows)["request_body"]
    assert column.num_chunks == 3  # one wrapped value a chunk (pa.array makes one copied chunk)
    assert column.to_pylist() == ["a", "b", None]


def test_a_request_body_that_is_not_utf8_is_refused_and_names_the_column():
    with pytest.raises(ValueError, match=r"outbound_log\.request_body"):
        to_arrow("outbound_log", [outbound_request(request_body=b'{"a":"\xff"}')])


def _has_dictionary(path, column: str) -> bool:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(
        meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column
    )
    return chunk.has_dictionary_page


def test_customer_id_lists_are_dictionary_encoded_in_flushed_and_compacted_files(tmp_path):
    rows = [
        outbound_request(identifier=f"req-{i}", customer_ids=[f"c{i % 7}", f"c{i % 5}"])
        for i in range(40)
    ]
    logs = LogWriter(tmp_path)
    logs.write("outbound_log", rows[:20])
    logs.write("outbound_log", rows[20:])
    flushed = sorted((tmp_path / "outbound_log").glob("date=2*/*.parquet"))
    assert len(flushed) == 2
    assert all(_has_dictionary(path, "customer_ids.list.element") for path in flushed)
    compact(tmp_path, "outbound_log", min_files=2)
    (merged,) = (tmp_path / "outbound_log").glob("date=2*/*.parquet")
    assert _has_dictionary(merged, "customer_ids.list.element")
    assert not _has_dictionary(merged, "request_body")
    lists = pq.read_table(merged, columns=["identifier", "customer_ids"]).to_pylist()
    assert sorted(lists, key=lambda r: int(r["identifier"][4:])) == [
        {"identifier": r["identifier"], "customer_ids": r["customer_ids"]} for r in rows
    ]


def test_small_inbound_flushes_are_plain_lz4_and_compaction_gives_them_dictionaries_and_zstd(
    tmp_path,
):
    rows = [inbound_request(customer_id=f"c{i % 3}", identifier=f"req-{i}") for i in range(40)]
    logs = LogWriter(tmp_path)
    logs.write("inbound_log", rows[:20])
    logs.write("inbound_log", rows[20:])
    flushed = sorted((tmp_path / "inbound_log").glob("date=2*/*.parquet"))
    assert len(flushed) == 2
    assert not any(_has_dictionary(path, "customer_id") for path in flushed)
    assert {_codec(path) for path in flushed} == {"LZ4"}  # LZ4_RAW in the file (DuckDB says so)
    compact(tmp_path, "inbound_log", min_files=2)
    (merged,) = (tmp_path / "inbound_log").glob("date=2*/*.parquet")
    assert _has_dictionary(merged, "customer_id")
    assert _codec(merged) == "ZSTD"
    back = pq.read_table(merged, columns=["identifier", "customer_id"]).to_pylist()
    assert sorted(back, key=lambda r: int(r["identifier"][4:])) == [
        {"identifier": r["identifier"], "customer_id": r["customer_id"]} for r in rows
    ]
    big = [inbound_request(identifier=f"big-{i}") for i in range(layout.PLAIN_FILE_ROWS + 1)]
    (large,) = logs.write("inbound_log", big)
    assert _has_dictionary(large, "customer_id")
    codecs = _codecs(large)  # a big flush: zstd, its bodies left for the merge to compress
    assert {codecs.pop("request_body"), codecs.pop("response_body")} == {"UNCOMPRESSED"}
    assert set(codecs.values()) == {"ZSTD"}


def _codecs(path) -> dict[str, str]:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    return {
        meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)
    }


def _codec(path) -> str:
    (codec,) = set(_codecs(path).values())
    return codec


def test_message_ids_are_plain_with_statistics_and_customer_ids_keep_their_dictionary(tmp_path):
    rows = [message(message_id=f"m-{i}", source_id=i, customer_id=f"c{i % 3}") for i in range(50)]
    (path,) = LogWriter(tmp_path).write("outbound_messages", rows)
    assert not _has_dictionary(path, "message_id") and not _has_dictionary(path, "source_id")
    assert _has_dictionary(path, "customer_id")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    stats = {
        meta.column(i).path_in_schema: meta.column(i).statistics for i in range(meta.num_columns)
    }
    assert (stats["message_id"].min, stats["message_id"].max) == ("m-0", "m-9")
    assert (stats["source_id"].min, stats["source_id"].max) == (0, 49)
    assert pq.read_table(path, columns=["message_id"])["message_id"].to_pylist() == [
        f"m-{i}" for i in range(50)
    ]
