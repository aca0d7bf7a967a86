"""JavaScript's value semantics for JSON values, as Segment's mapping-kit and FQL apply them.

One room for what `String(x)`, `Number(x)`, truthiness, `x == ""` and `typeof` mean, so the
trigger evaluator, the mapping evaluator and the signature check agree on every value.
`UNDEFINED` stands for JavaScript's `undefined`: a missing field.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

UNDEFINED: Any = type("_Undefined", (), {"__repr__": lambda self: "undefined"})()


def js_string(value: Any) -> str:
    """JavaScript ``String(value)`` for JSON values."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, list | tuple):
        return ",".join(
            "" if item is None or item is UNDEFINED else js_string(item) for item in value
        )
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def number_text(value: float) -> str:
    """JavaScript `Number.prototype.toString()` for a float (`String(x)` of a number)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    assert isinstance(exponent, int)
    point = exponent + len(digits)  # the decimal point sits after this many digits
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        exp = n - 1
        exp_text = f"e{'+' if exp >= 0 else '-'}{abs(exp)}"
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + exp_text
    return sign + body


_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_PREFIXED = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def to_number(value: Any) -> float:
    """JavaScript ``Number(value)`` for JSON values (missing is NaN)."""
    if value is UNDEFINED:
        return math.nan
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        if text in ("Infinity", "+Infinity"):
            return math.inf
        if text == "-Infinity":
            return -math.inf
        if _JS_DECIMAL.fullmatch(text):
            return float(text)
        if _JS_PREFIXED.fullmatch(text):
            return float(int(text, 0))
        return math.nan
    if isinstance(value, list):
        return to_number(js_string(value))
    return math.nan


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value."""
    if value is UNDEFINED or value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def loosely_empty(value: Any) -> bool:
    """JavaScript ``value == ''`` (0, false, "", [] and lists that print as "")."""
    if isinstance(value, str):
        return value == ""
    if isinstance(value, bool):
        return value is False
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, list):
        return js_string(value) == ""
    return False


def type_name(value: Any) -> str:
    """mapping-kit's realTypeOf() names."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def article_type(value: Any) -> str:
    """'an object', 'a string' ... as ajv-human-errors words it."""
    name = type_name(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"
