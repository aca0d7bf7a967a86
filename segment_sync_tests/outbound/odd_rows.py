"""Hypothesis strategies for stored JSON text a builder may find hard: odd numbers, deep
nesting, control characters, Unicode edge cases, whitespace and sizes around Segment's 32 KB.

The text is written as a client might store it, not as orjson would write it, so the builders
see numbers such as `1e5` that grow when re-serialised (`100000.0`).
"""

from __future__ import annotations

from datetime import datetime

import orjson
from hypothesis import strategies as st

from segment_sync_tests.outbound.raw_rows import Blob, stored_time

# Numbers as a client may write them: exponents, negative zero, out of double range, past
# 64 bits, more digits than a double keeps.
ODD_NUMBERS = [
    "1e5", "1E5", "1E+5", "-0", "-0.0", "0.1e1", "1.50", "1e15", "-1e15", "9e15", "1e16",
    "1e309", "-1e400", "5e-324", "1e-7", "12345678901234567.0", "18446744073709551615",
    "18446744073709551616", "-9223372036854775809", "100000.0",
]  # fmt: skip
# Characters at Unicode's edges, raw in the text: a BOM, line and paragraph separators, the
# last code points of planes 0 and 16, a combining accent, a zero-width space, DEL, an emoji.
ODD_CHARACTERS = ["\ufeff", "\u2028", "\u2029", "\uffff", "\U0010ffff", "e\u0301", "\u200b", "\x7f"]
ODD_CHARACTERS += ["\U0001f600"]
# Escapes: a lone surrogate (not a character), a valid surrogate pair, NUL, controls, a slash.
ODD_ESCAPES = ["\\ud800", "\\udfff", "\\udbff\\udfff", "\\u0000", "\\u001f", "\\/", "\\u00e9"]
DEPTHS = [1, 64, 252, 253, 254, 255, 300, 1022, 1023, 1024, 1025]


def _key(key: str) -> str:
    return orjson.dumps(key).decode()


def _numbers(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.lists(st.tuples(keys, st.sampled_from(ODD_NUMBERS)), min_size=1, max_size=4)
    return pairs.map(lambda ps: "{" + ",".join(f"{_key(k)}:{n}" for k, n in ps) + "}")


def _nested(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def text(key: str, depth: int, kind: str) -> str:
        if kind == "arrays":
            return "{" + _key(key) + ":" + "[" * depth + "]" * depth + "}"
        return '{"a":' * depth + "{" + _key(key) + ":1}" + "}" * depth

    return st.builds(text, keys, st.sampled_from(DEPTHS), st.sampled_from(["arrays", "objects"]))


def _characters(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    raw_control = st.integers(0, 31).map(chr)  # not allowed raw inside a JSON string
    inside = st.sampled_from(ODD_CHARACTERS) | st.sampled_from(ODD_ESCAPES) | raw_control
    return st.builds(lambda k, c: "{" + _key(k) + ':"x' + c + 'y"}', keys, inside)


def _spaced(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return keys.map(lambda k: " {\n\t" + _key(k) + " : [ 1 , 2.50 ] } \n")


def _around_the_limit(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Strings whose message is near 32768 bytes (or near 7281, where re-serialising starts to
    matter), and arrays of numbers that re-serialise longer (`1e5`: ~9/4 times; 17 digits and a
    point, or an integer beyond 64 bits: 22/20) or not, stored around and under 32 KB."""
    padded = st.builds(
        lambda k, n: "{" + _key(k) + ':"' + "x" * n + '"}',
        keys,
        st.integers(32_350, 32_700) | st.integers(6_950, 7_250),
    )
    numbers = st.sampled_from(
        [
            ("1e5", 1_500, 8_150),
            ("12345678901234567.0", 1_350, 1_640),  # 1.2345678901234568e+16
            ("-9223372036854775809", 1_400, 1_560),  # beyond 64 bits: -9.223372036854776e+18
            ("1234567890123456789", 1_600, 1_640),  # a 64-bit integer: written as it is
            ("2.5", 7_900, 8_190),
        ]
    )
    arrays = numbers.flatmap(
        lambda spec: st.builds(
            lambda k, n: "{" + _key(k) + ":[" + ",".join([spec[0]] * n) + "]}",
            keys,
            st.integers(spec[1], spec[2]),
        )
    )
    return padded | arrays


def odd_objects(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Stored JSON text of the class: every member is one example away."""
    return st.one_of(
        _numbers(keys), _nested(keys), _characters(keys), _spaced(keys), _around_the_limit(keys)
    )


# What any SQLite client may store in a text column besides clean text: bytes that are not
# UTF-8 (stored as TEXT), and BLOBs that are or are not UTF-8.
NOT_UTF8 = [b"\xff", b"c-\xfe\xff", b"\xc3", b"\xed\xa0\x80", b'{"a": "\xe2\x82"}']


def stored_bytes() -> st.SearchStrategy[object]:
    invalid = st.sampled_from(NOT_UTF8)
    return invalid | invalid.map(Blob) | st.text(max_size=8).map(lambda t: Blob(t.encode()))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.text(max_size=6)
_clean_data = st.dictionaries(_keys, json_values, max_size=4).map(
    lambda d: orjson.dumps(d).decode()
)
_broken_data = st.sampled_from(['{"a":1,', "[1, 2]", '"text"', "", "null", "{'a': 1}", '{"a":NaN}'])
_good_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
_bad_times = st.sampled_from(["yesterday", "2026-13-45 00:00:00.000000", "2026-01-01 25:00"])


def event_rows() -> st.SearchStrategy[dict[str, object]]:
    """Column values of one stored loyalty event, good or not (an allow-listed action)."""
    return st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from(["c-1", "c-2", "c-3"]) | st.text(max_size=8)
            | stored_bytes(),
            "external_customer_id": st.none() | st.just("x-1") | stored_bytes(),
            "action": st.just("point_add") | st.sampled_from(NOT_UTF8),
            "data": _clean_data | _clean_data | _broken_data | odd_objects(_keys) | stored_bytes()
            | _clean_data.map(lambda t: Blob(t.encode())),
            "occurred_at": _good_times.map(stored_time) | _bad_times | stored_bytes(),
        }
    )  # fmt: skip
