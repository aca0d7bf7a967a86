"""byte_search.contains answers as `in` does, on buffers big enough to take the fast path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.byte_search import BIG_BYTES, contains
from segment_sync.redaction import Redactor

alphabet = st.sampled_from([b"a", b"b", b"\x00", b":", b"/", b"@", b"\xc3\xa4", b'"'])
needles = st.lists(alphabet, min_size=1, max_size=6).map(b"".join)


@st.composite
def big_haystacks(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A needle, and a buffer past BIG_BYTES that may hold it anywhere (or a near miss)."""
    needle = draw(needles)
    filler = draw(st.lists(alphabet, min_size=1, max_size=5).map(b"".join))
    buffer = bytearray(filler * (BIG_BYTES // len(filler) + 1))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(buffer)))
        piece = draw(st.sampled_from([needle, needle[:-1], needle[1:]]))
        buffer[at:at] = piece
    return bytes(buffer), needle


@settings(max_examples=300, deadline=None)
@given(case=big_haystacks())
def test_contains_answers_as_in_does_on_big_buffers(case: tuple[bytes, bytes]) -> None:
    haystack, needle = case
    assert len(haystack) >= BIG_BYTES
    assert contains(haystack, needle) is (needle in haystack)


@settings(max_examples=100, deadline=None)
@given(haystack=st.binary(max_size=64), needle=st.binary(max_size=4))
def test_contains_answers_as_in_does_on_small_buffers(haystack: bytes, needle: bytes) -> None:
    assert contains(haystack, needle) is (needle in haystack)


def test_a_secret_at_the_very_end_of_a_big_body_is_masked() -> None:
    body = b'{"batch":[' + b'{"a":1},' * BIG_BYTES + b'"wk_live_123"]}'
    redacted = Redactor(["wk_live_123"]).body(body)
    assert b"wk_live_123" not in redacted
    assert redacted.endswith(b'"[REDACTED]"]}')


def test_a_bytearray_is_searched_as_in_does_not_refused() -> None:
    haystack = bytearray(b"a" * BIG_BYTES + b"secret")
    assert contains(haystack, b"secret") and not contains(haystack, b"absent")  # type: ignore[arg-type]
