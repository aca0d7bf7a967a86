"""The nesting-depth scan both the receiver and the ingest gate use, against a parser's answer."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from segment_sync.inbound.json_depth import (
    MAX_EVENT_DEPTH,
    body_depth_limit,
    nested_deeper_than,
)

# Strings full of what could fool a scanner: brackets, quotes, backslashes, escapes.
TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\/,:ab \n\u00e9\u2028'), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT


def depth(value: object) -> int:
    """Levels of objects and arrays, computed on the parsed value (the reference)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def chain(levels: int, leaf: object, keys: str) -> object:
    """`levels` nested containers around `leaf`, alternating objects and arrays by `keys`."""
    value = leaf
    for i in range(levels):
        value = {keys[i % len(keys)]: value} if i % 2 else [value, keys]
    return value


values = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=12,
)
deep_values = st.builds(
    chain, st.integers(min_value=0, max_value=140), values, TRICKY_TEXT.filter(bool)
)


@given(value=deep_values | values, limit=st.integers(min_value=0, max_value=130))
def test_the_scan_agrees_with_the_parsed_depth_for_any_json(value, limit):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert nested_deeper_than(text.encode(), limit) == (depth(value) > limit), text[:200]


def test_sixty_four_levels_pass_and_sixty_five_do_not():
    assert MAX_EVENT_DEPTH == 64
    assert not nested_deeper_than(b'{"a":' * 64 + b"1" + b"}" * 64, 64)
    assert nested_deeper_than(b'{"a":' * 65 + b"1" + b"}" * 65, 64)


def test_brackets_inside_strings_neither_hide_nor_add_depth():
    hiding = b'{"x":"]]]]\\"]]","y":' + b"[" * 65 + b"]" * 65 + b"}"  # 66 deep
    assert nested_deeper_than(hiding, 65)
    adding = b'{"x":"' + b"[" * 500 + b'"}'  # 1 deep
    assert not nested_deeper_than(adding, 1)


def test_a_batch_body_may_hold_events_of_the_full_depth():
    event = b'{"a":' * 63 + b"1" + b"}" * 63  # 63 deep
    assert body_depth_limit(b"  [" + event + b"]") == 65
    assert body_depth_limit(event) == 64
