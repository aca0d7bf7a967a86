"""Secrets as data and where they end up: every value of every written log row, read back."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from hypothesis import strategies as st

from segment_sync.logs.views import connect

# Characters JSON escapes (quote, backslash, control characters), one a Python json.dumps
# escapes as \u00e9, one only JavaScript escapes, and URL-ish ones, around plain letters.
_ALPHABET = st.sampled_from(list('abcXYZ019"\\\n\t\x01\x1f/é\u2028<@:'))
SECRETS = st.builds(lambda middle: f"K3y{middle}", st.text(_ALPHABET, min_size=3, max_size=10))


def secret_forms(secret: str) -> set[str]:
    """The secret as written and as JSON writers escape it inside a string (orjson, DuckDB's
    to_json, Python's json.dumps with ASCII escapes)."""
    return {
        secret,
        orjson.dumps(secret).decode()[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def leaks(logs_dir: Path | str, tables: list[str], secret: str) -> list[tuple[str, str, str]]:
    """Every (table, column, value) of the written rows holding `secret` in any of its forms;
    raises if no table has any row (a check of nothing proves nothing)."""
    forms = secret_forms(secret)
    found: list[tuple[str, str, str]] = []
    total = 0
    with connect(logs_dir) as con:
        for table in tables:
            cursor = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            total += len(rows)
            for row in rows:
                for name, value in zip(names, row, strict=True):
                    values = value if isinstance(value, list) else [value]
                    if any(f in str(v) for v in values for f in forms):
                        found.append((table, name, repr(value)[:200]))
    assert total, f"no rows in {tables}"
    return found
