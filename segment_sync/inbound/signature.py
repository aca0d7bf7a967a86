"""Segment "Webhooks (Actions)" request signatures: hex HMAC-SHA1 over JavaScript-style JSON.

Segment signs with header `X-Signature` = hex HMAC-SHA1(shared secret, body). For one event the
body is what was sent; in batch mode only the first event is signed, serialised the way
JavaScript's `JSON.stringify` does it. `js_stringify` reproduces that serialisation for values
that came out of `orjson.loads` (dict, list, str, int, float, bool, None):

- compact (no spaces), object keys in the order received, non-ASCII characters unescaped;
  strings escape only `"`, `\\`, and control characters below U+0020 (`\\b \\t \\n \\f \\r`, others
  as lowercase `\\u00xx`); `/`, DEL and U+2028/U+2029 are left as they are.
- numbers as JavaScript prints a double: `1.0` -> `1`, `-0.0` -> `0`, `1e16` -> `10000000000000000`,
  `1e21` -> `1e+21`, `1.5e-7` -> `1.5e-7`, `0.000001` -> `0.000001`; integers beyond 2**53 lose
  precision as they do in JavaScript (`12345678901234567890` -> `12345678901234567000`).
- a key repeated in one object keeps its first position and its last value (as `JSON.parse`).
- not reproducible: lone UTF-16 surrogates (`orjson` rejects them when parsing).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

import orjson

from segment_sync.inbound.mapping.js_values import number_text

_MAX_SAFE_INT = 2**53


def js_number(value: float | int) -> str:
    """A number as JavaScript's `JSON.stringify` writes it (non-finite numbers become null)."""
    x = float(value)
    return number_text(x) if math.isfinite(x) else "null"


def _js_values(obj: Any) -> Any:
    """Replace numbers whose JSON text differs from JavaScript's by pre-rendered fragments."""
    if isinstance(obj, dict):
        out = None
        for key, val in obj.items():
            new = _js_values(val)
            if new is not val:
                if out is None:
                    out = dict(obj)
                out[key] = new
        return obj if out is None else out
    if isinstance(obj, list):
        out_list = None
        for i, val in enumerate(obj):
            new = _js_values(val)
            if new is not val:
                if out_list is None:
                    out_list = list(obj)
                out_list[i] = new
        return obj if out_list is None else out_list
    if isinstance(obj, float):
        return orjson.Fragment(js_number(obj))
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > _MAX_SAFE_INT:
        return orjson.Fragment(js_number(obj))
    return obj


def js_stringify(obj: Any) -> bytes:
    """UTF-8 bytes of `JSON.stringify(obj)` for a value parsed from JSON (see module notes)."""
    return orjson.dumps(_js_values(obj))


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA1 of `body` with `secret`, as Segment puts in `X-Signature`."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def _matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))


def verify(raw_body: bytes, parsed: Any, header: str | None, secret: str) -> bool:
    """Check `X-Signature` in constant time: object -> raw body (or its re-serialisation); batch -> first event."""
    if not header or not secret:
        return False
    given = header.strip().lower()
    if isinstance(parsed, list):
        if not parsed:
            return False
        return _matches(sign(js_stringify(parsed[0]), secret), given)
    if _matches(sign(raw_body, secret), given):
        return True
    # A proxy may have re-serialised the body; Segment signed JSON.stringify of the same value.
    return _matches(sign(js_stringify(parsed), secret), given)
