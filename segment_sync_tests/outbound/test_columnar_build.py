"""The columnar builder sends exactly what the per-row builder would, row for row.

The per-row builder (`build_messages` over parsed records) is the reference: it reads each
row with orjson and datetime and builds each message as a dict. The columnar builder builds
the same messages as text in one DuckDB query. On generated rows, clean and broken alike,
both must give the same messages (same bytes for Track calls, whose event JSON passes through;
the same JSON for Identify calls, whose traits may come in another key order), the same rows
not sent with the same reasons, and the same count of rows not allow-listed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segment_sync.loyalty.arrow_reader import EVENT_SCHEMA, PROFILE_SCHEMA
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import parse_row
from segment_sync.outbound.build import build_messages
from segment_sync.outbound.columnar_build import ColumnarBuilder
from segment_sync.settings import parse_settings
from segment_sync_tests.outbound.odd_rows import json_values, odd_objects

ALLOWED = ["purchase", "point_add", "tier_change"]
FIELDS = ["email", "first_name"]
# What DuckDB's json_valid accepts and a strict parser (and Segment) refuses, and other breakage.
BROKEN_JSON = [
    '{"a":NaN}', '{"a":-Infinity}', '{"a":inf}', '{"a":1,}', '{"a":[1,]}', '{"a":1e999}',
    '{"a":' + "9" * 400 + "}", "[1, 2]", '"text"', "{", "", "null", '{"a":1}{"b":2}',
    '{"a":"\\ud800"}', "{'a': 1}",
]  # fmt: skip
ODD_TIMES = [
    "2026-11-28T17:52:06Z",
    "2026-11-28 17:52:06",
    "yesterday",
    "2026-13-45 00:00:00.000000",
]


def stored_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # what SQLAlchemy writes to SQLite


texts = st.text(max_size=10)  # quotes, backslashes, control characters, any Unicode
times = st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2100, 1, 1)).map(
    stored_time
) | st.sampled_from(ODD_TIMES)
# Milliseconds on the dot are where float rounding in the messageId would show.
times |= st.integers(0, 4_000_000_000).map(
    lambda ms: stored_time(datetime(1970, 1, 1) + timedelta(milliseconds=ms))
)
origins = st.sampled_from(["loyalty", "loyalty", "segment", "import"])


def object_text(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    clean = st.dictionaries(keys, json_values, max_size=4).map(lambda d: orjson.dumps(d).decode())
    return clean | clean | clean | st.sampled_from(BROKEN_JSON) | odd_objects(keys)


event_rows = st.tuples(
    st.sampled_from(["c-1", "c-2"]) | texts,
    st.none() | texts,
    st.sampled_from([*ALLOWED, "opt_in"]) | texts,
    object_text(texts),
    times,
    origins,
)
profile_rows = st.tuples(
    st.sampled_from(["c-1", "c-2"]) | texts,
    st.none() | texts,
    object_text(st.sampled_from([*FIELDS, "tier", "weird.key"]) | texts),
    times,
    origins,
)


def sync_settings(mapping: str = "customer_id", fields: list[str] = FIELDS):
    return parse_settings(
        {
            "general": {"customer_id_mapping": mapping},
            "outbound": {"event_sync": ALLOWED, "customer_fields_sync": fields},
        }
    )


def both_builders(stream: Stream, rows: list[tuple], mapping: str, fields: list[str] = FIELDS):
    """(columnar, per-row) results for the same rows, ids 1..n."""
    rows = [(i, *row) for i, row in enumerate(rows, start=1)]
    schema = EVENT_SCHEMA if stream is Stream.EVENTS else PROFILE_SCHEMA
    table = pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(zip(*rows, strict=True), schema, strict=True)],
        schema=schema,
    )
    configured = sync_settings(mapping, fields)
    builder = ColumnarBuilder(configured, stream)
    try:
        columnar = builder.build(table)
    finally:
        builder.close()
    records = [parse_row(stream, row) for row in rows]
    return columnar, build_messages(records, configured, stream), builder


def assert_within_segment_limit(bodies: list[bytes]) -> None:
    """No message over 32768 bytes, on the wire nor re-serialised as Segment may read it."""
    for body in bodies:
        assert len(body) <= 32768
        assert len(orjson.dumps(orjson.loads(body))) <= 32768


def assert_same_messages(columnar, reference, *, exact_bytes: bool) -> None:
    messages, not_sent, not_allow_listed = reference
    assert_within_segment_limit([m.body for m in messages])
    got = columnar.messages
    assert got.message_id.to_pylist() == [m.message_id for m in messages]
    assert got.source_id.to_pylist() == [m.source_id for m in messages]
    assert got.customer_id.to_pylist() == [m.customer_id for m in messages]
    assert got.event_name.to_pylist() == [m.event_name for m in messages]
    assert got.occurred_ms.to_pylist() == [m.occurred_ms for m in messages]
    bodies = [b[:-1] for b in got.bodies.to_pylist()]  # each ends with its separator
    assert_within_segment_limit(bodies)
    if exact_bytes:
        assert bodies == [m.body for m in messages]
    else:
        assert [orjson.loads(b) for b in bodies] == [orjson.loads(m.body) for m in messages]
    assert got.sizes.tolist() == [len(b) for b in bodies]
    assert columnar.not_sent == not_sent
    assert columnar.not_allow_listed == not_allow_listed


generated = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
mappings = st.sampled_from(["customer_id", "external_customer_id"])


# Members of the class found before, always tried: 30 KB of 1e5 (about 67 KB once re-serialised),
# nesting just past what can be re-serialised, and past what can be read (action not sent).
NOW = "2026-01-01 00:00:00.000000"
GROWN = '{"n":[' + "1e5," * 7_499 + "1e5]}"


@generated
@example(rows=[("c-1", None, "purchase", GROWN, NOW, "loyalty")], mapping="customer_id")
@example(
    rows=[("c-1", None, "purchase", '{"a":' + "[" * 253 + "]" * 253 + "}", NOW, "loyalty")],
    mapping="customer_id",
)
@example(
    rows=[("c-1", None, "opt_in", '{"a":' + "[" * 1024 + "]" * 1024 + "}", NOW, "loyalty")],
    mapping="customer_id",
)
@given(rows=st.lists(event_rows, min_size=1, max_size=25), mapping=mappings)
def test_track_messages_are_byte_for_byte_those_of_the_per_row_builder(rows, mapping):
    columnar, reference, _ = both_builders(Stream.EVENTS, rows, mapping)
    assert_same_messages(columnar, reference, exact_bytes=True)


@generated
@example(rows=[("c-1", None, '{"email":1e5,"email":-0}', NOW, "loyalty")], mapping="customer_id")
@example(
    rows=[("c-1", None, GROWN.replace('"n"', '"email"'), NOW, "loyalty")], mapping="customer_id"
)
@given(rows=st.lists(profile_rows, min_size=1, max_size=25), mapping=mappings)
def test_identify_messages_carry_the_same_json_as_the_per_row_builder(rows, mapping):
    columnar, reference, _ = both_builders(Stream.PROFILES, rows, mapping)
    assert_same_messages(columnar, reference, exact_bytes=False)


def test_a_field_name_the_query_cannot_quote_leaves_profiles_to_the_per_row_builder():
    row = (
        "c-1",
        None,
        orjson.dumps({"a.b": 1, "email": "x@y"}).decode(),
        stored_time(datetime(2026, 1, 1)),
        "loyalty",
    )
    columnar, reference, builder = both_builders(
        Stream.PROFILES, [row], "customer_id", ["a.b", "email"]
    )
    assert_same_messages(columnar, reference, exact_bytes=False)
    assert builder.rows_built_per_row == 1
    assert orjson.loads(columnar.messages.bodies.to_pylist()[0][:-1])["traits"] == {
        "a.b": 1,
        "email": "x@y",
    }


def test_clean_rows_are_built_by_the_query_alone():
    now = stored_time(datetime(2026, 11, 28, 17, 52, 6, 123456))
    events = [
        (
            f"c-{i}",
            None,
            "purchase",
            orjson.dumps({"total": i, "sku": "e123"}).decode(),
            now,
            "loyalty",
        )
        for i in range(50)
    ]
    columnar, reference, builder = both_builders(Stream.EVENTS, events, "customer_id")
    assert builder.rows_built_per_row == 0 and len(columnar.messages) == 50
    assert_same_messages(columnar, reference, exact_bytes=True)
    profiles = [
        (f"c-{i}", None, orjson.dumps({"email": f"{i}@x", "tier": "gold"}).decode(), now, "loyalty")
        for i in range(50)
    ]
    columnar, reference, builder = both_builders(Stream.PROFILES, profiles, "customer_id")
    assert builder.rows_built_per_row == 0 and len(columnar.messages) == 50
    assert_same_messages(columnar, reference, exact_bytes=False)


def test_each_lenient_json_form_fails_its_row_as_the_strict_parser_does():
    now = stored_time(datetime(2026, 1, 1))
    rows = [("c-1", None, "purchase", text, now, "loyalty") for text in BROKEN_JSON]
    columnar, reference, _ = both_builders(Stream.EVENTS, rows, "customer_id")
    assert len(columnar.messages) == 0
    assert [n.outcome for n in columnar.not_sent] == ["failed"] * len(BROKEN_JSON)
    assert_same_messages(columnar, reference, exact_bytes=True)


def test_a_message_over_32_kb_is_failed_with_its_size_not_sent():
    now = stored_time(datetime(2026, 1, 1, tzinfo=UTC))
    big = orjson.dumps({"blob": "x" * 32_768}).decode()
    columnar, reference, _ = both_builders(
        Stream.EVENTS, [("c-1", None, "purchase", big, now, "loyalty")], "customer_id"
    )
    assert len(columnar.messages) == 0
    assert "32768-byte limit" in columnar.not_sent[0].reason
    assert_same_messages(columnar, reference, exact_bytes=True)
