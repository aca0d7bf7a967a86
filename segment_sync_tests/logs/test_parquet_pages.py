"""Log files are written a page at a time: a chunk's request bodies are not held over and over."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from segment_sync.logs import layout
from segment_sync.logs.store import LogWriter, to_arrow
from segment_sync_tests.logs.test_log_store import message, outbound_request

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


def test_a_request_body_that_is_not_utf8_is_refused_and_names_the_column():
    with pytest.raises(ValueError, match=r"outbound_log\.request_body"):
        to_arrow("outbound_log", [outbound_request(request_body=b'{"a":"\xff"}')])
