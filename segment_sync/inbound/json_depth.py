"""How deeply a JSON text nests its objects and arrays, found without parsing it.

Both the receiver (before it parses or authenticates a body) and the ingest (before a buffered
event reaches the mappings) refuse events nested deeper than `MAX_EVENT_DEPTH` levels: the code
behind them (signature serialisation, mappings, Antavo request bodies) walks values recursively,
and Segment events are a few levels deep. The scan is string-aware (brackets inside strings do
not count) and never recurses: a few passes of C-level `bytes` operations, each over the
brackets and quotes left by the one before, so it costs a fraction of a parse.
"""

from __future__ import annotations

import re

MAX_EVENT_DEPTH = 64
"""Levels of nested objects and arrays an event may have; `{"a": [1]}` has 2."""

_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_TOKENS = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')
_BATCH = re.compile(rb"[ \t\r\n]*\[")


def nested_deeper_than(text: bytes | str, limit: int) -> bool:
    """Whether valid JSON `text` nests more than `limit` levels (for invalid JSON: any answer).

    Escaped characters go first (a `\\"` never ends a string), then everything but quotes and
    brackets. Two adjacent quotes are dropped together, which keeps every other token inside or
    outside a string as it was; what is left of the strings holds brackets and is cut out. Each
    pass over the brackets then removes the innermost pairs, so a depth of d takes d passes.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    # Too few brackets in all to nest deeper (most single events): two C scans, where the
    # passes below cost a single-event request ~3 us. Escapes and strings only remove brackets.
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    tokens = raw.translate(_BRACKETS, _NOT_TOKENS)
    if tokens.count(b"[") <= limit:
        return False
    tokens = tokens.replace(b'""', b"")
    if b'"' in tokens:
        tokens = _STRING.sub(b"", tokens)
        if tokens.count(b"[") <= limit:  # the brackets counted above were inside strings
            return False
    for _ in range(limit):
        inner_removed = tokens.replace(b"[]", b"")
        if not inner_removed:
            return False
        if len(inner_removed) == len(tokens):  # unbalanced: not JSON, a parser refuses it
            break
        tokens = inner_removed
    return True


def body_depth_limit(body: bytes) -> int:
    """The nesting a request body may have: one more for a batch, whose array holds events."""
    return MAX_EVENT_DEPTH + 1 if _BATCH.match(body) else MAX_EVENT_DEPTH
