"""Property: whatever webhook events a buffer holds, an ingest registers every good one exactly
once, fails every bad one with a reason, and ends without an unhandled exception.

Generated: good track events of many shapes, sizes and value types (unicode, control characters,
huge and odd numbers, strings up to 40,000 characters), mixed in any order with bad ones:
nesting from 65 to 1,500 levels, texts that are not objects, not JSON or not UTF-8, non-finite
numbers, and customer IDs a mapping refuses. They go into a real SQLite buffer (as the receiver
stores them, or raw, as any SQLite client may), then `segment-sync run inbound` sends them to
the Antavo stand-in over loopback, in chunks and in flight as generated.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.cli import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET

MAPPING = {
    "name": "Orders",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {
        "action": {"@literal": "checkout"},
        "data": {"mid": {"@path": "$.messageId"}, "total": {"@path": "$.properties.total"}},
    },
}


@dataclass(frozen=True)
class Stored:
    """One buffer row to write: its messageId, its text (bytes: raw), whether it is good."""

    message_id: str
    text: str | bytes
    good: bool


# -- what a webhook event may hold -----------------------------------------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e5, -0.0, 1e308, 5e-324, 2**53 + 1])
    | st.text(max_size=20)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
padding = st.integers(min_value=0, max_value=40_000).map(lambda n: "é\u2028\x01" * (n // 3))
good_user_ids = (
    st.text(min_size=1, max_size=30)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)


def track(message_id: str, user_id: object, total: object, pad: str) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": user_id,
        "properties": {"total": total, "pad": pad},
        "context": {"library": {"name": "analytics.js"}},
    }


@st.composite
def good_event(draw, n: int) -> Stored:
    mid = f"good-{n}"
    event = track(mid, draw(good_user_ids), draw(values), draw(padding))
    compact = draw(st.booleans())
    text = json.dumps(
        event,
        ensure_ascii=draw(st.booleans()),
        allow_nan=False,
        **({"separators": (",", ":")} if compact else {"indent": 1}),
    )
    return Stored(mid, text, True)


def _nest(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@st.composite
def bad_event(draw, n: int) -> Stored:
    mid = f"bad-{n}"
    good = json.dumps(track(mid, "c-1", 1, ""))
    kind = draw(
        st.sampled_from(
            [
                "deep",
                "deep_elsewhere",
                "not_object",
                "not_json",
                "not_utf8",
                "non_finite",
                "bad_user_id",
            ]
        )  # fmt: skip
    )
    if kind == "deep":
        levels = draw(st.integers(min_value=65, max_value=1500))
        return Stored(mid, good.replace('"total": 1', f'"total": {_nest(levels)}'), False)
    if kind == "deep_elsewhere":  # nested where no mapping looks
        levels = draw(st.integers(min_value=65, max_value=300))
        return Stored(mid, good.replace('"library": ', f'"library": {_nest(levels)}, "x": '), False)
    if kind == "not_object":
        return Stored(mid, json.dumps(draw(st.lists(values, max_size=3) | leaves)), False)
    if kind == "not_json":
        return Stored(mid, good[: draw(st.integers(min_value=0, max_value=len(good) - 1))], False)
    if kind == "not_utf8":
        cut = good.index('"c-1"') + 2
        raw = good.encode()
        return Stored(
            mid,
            raw[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[cut:],
            False,
        )
    if kind == "non_finite":
        number = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e309"]))
        return Stored(mid, good.replace('"total": 1', f'"total": {number}'), False)
    user_id = draw(st.sampled_from([None, "", {}, {"id": "c-1"}, [1, 2], [[1]]]))
    event = track(mid, user_id, 1, "")
    if user_id is None:
        del event["userId"]
    return Stored(mid, json.dumps(event), False)


@st.composite
def buffers(draw) -> list[Stored]:
    goods = draw(st.integers(min_value=1, max_value=40))
    bads = draw(st.integers(min_value=0, max_value=10))
    rows = [draw(good_event(n)) for n in range(goods)] + [draw(bad_event(n)) for n in range(bads)]
    return draw(st.permutations(rows))


# -- the real parts ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def antavo() -> Iterator[AntavoStandin]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANTAVO_API_KEY", ANTAVO_KEY)
        mp.setenv("ANTAVO_API_SECRET", ANTAVO_SECRET)
        stand = AntavoStandin(ANTAVO_KEY, ANTAVO_SECRET, stack="test", seed=5)
        with serve_in_thread(stand.app) as url:
            stand.url = url
            yield stand


def store(db: Path, rows: list[Stored]) -> None:
    """Write the rows in order: texts as the receiver stores them, bytes as raw SQLite TEXT."""
    buffer = InboundBuffer(f"sqlite:///{db}")
    try:
        for row in rows:
            if isinstance(row.text, str):
                buffer.add_row_groups([[(row.message_id, row.text)]])
                continue
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "INSERT INTO inbound_buffer (message_id, received_at, payload, status, "
                    "attempts, updated_at) VALUES (?, ?, CAST(? AS TEXT), 'pending', 0, ?)",
                    (row.message_id, now, row.text, now),
                )
    finally:
        buffer.close()


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=buffers(),
    chunk_size=st.integers(min_value=1, max_value=60),
    max_in_flight=st.integers(min_value=1, max_value=4),
)
def test_every_good_event_is_registered_once_and_every_bad_one_fails_with_a_reason(
    antavo, rows, chunk_size, max_in_flight
):
    antavo.reset()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings_file = root / "settings.yaml"
        settings_file.write_text(
            yaml.safe_dump(
                {
                    "logs": {"dir": str(root / "logs")},
                    "inbound": {
                        "base_url": antavo.url,
                        "buffer_url": f"sqlite:///{root / 'inbound.db'}",
                        "mappings": [MAPPING],
                        "chunk_size": chunk_size,
                        "max_in_flight": max_in_flight,
                    },
                }
            )
        )
        store(root / "inbound.db", rows)

        result = CliRunner().invoke(main, ["run", "inbound", "--settings", str(settings_file)])

        bad = {r.message_id for r in rows if not r.good}
        good = {r.message_id for r in rows if r.good}
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output, result.output
        assert result.exit_code == (1 if bad else 0), result.output
        registered = Counter(e["data"]["mid"] for e in antavo.events)
        assert registered == Counter(good), result.output  # each good one once, no bad one
        buffer = InboundBuffer(f"sqlite:///{root / 'inbound.db'}")
        try:
            records = {r.message_id: r for r in buffer.items(limit=1000)}
        finally:
            buffer.close()
        assert {m for m, r in records.items() if r.status == "done"} == good
        for message_id in bad:
            record = records[message_id]
            assert (record.status, record.attempts) == ("failed", 1), message_id
            assert record.last_error, message_id
        with connect(root / "logs") as logs:
            failed_rows = logs.execute(
                "SELECT message_id, error FROM inbound_items WHERE outcome = 'failed'"
            ).fetchall()
            [(run_status,)] = logs.execute("SELECT status FROM sync_runs").fetchall()
        assert {m for m, _ in failed_rows} == bad and all(e for _, e in failed_rows)
        assert run_status == ("failure" if bad else "success")
