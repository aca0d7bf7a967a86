"""A batch body splits into each event's exact received text, however it was written."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.inbound.request_body import Rejected, element_texts, parse

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_events = st.dictionaries(st.text(max_size=8), _values, max_size=5)
_whitespace = st.text(alphabet=" \t\n\r", max_size=3)


@st.composite
def _written_events(draw) -> str:
    """One event as some JSON writer may have written it: escaped or not, compact or indented."""
    event = draw(_events)
    indent = draw(st.sampled_from([None, 0, 2]))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
    return json.dumps(event, ensure_ascii=draw(st.booleans()), indent=indent, separators=separators)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_written_events(), min_size=1, max_size=6), gaps=st.data())
def test_each_element_text_is_the_slice_written_between_the_commas(texts, gaps) -> None:
    pieces = [gaps.draw(_whitespace) + text + gaps.draw(_whitespace) for text in texts]
    body = ("[" + ",".join(pieces) + "]").encode("utf-8")
    assert element_texts(body, len(texts)) == texts


def test_a_batch_keeps_digits_and_escapes_a_parser_would_rewrite() -> None:
    first = '{"n":123456789012345678901234567890,"x":1.50,"e":1E2}'
    second = '{"city":"Z\\u00fcrich","slash":"a\\/b"}'
    _, events, texts = parse(f"[{first},\n {second}]".encode())
    assert texts == [first, second]
    assert events[1] == {"city": "Zürich", "slash": "a/b"}


def test_a_split_that_does_not_match_the_parsed_count_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        element_texts(orjson.dumps([{"a": 1}, {"b": 2}]), 3)
    assert refused.value.status == 400
    assert "could not be split" in refused.value.message
