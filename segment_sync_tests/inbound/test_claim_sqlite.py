"""claim_sqlite against the SQLAlchemy statement it replaces, on copies of the same randomised SQLite rows."""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segment_sync.inbound import buffer_claims
from segment_sync.inbound.buffer import InboundBuffer

NOW = datetime(2026, 12, 6, 22, 0, 0, 123456, tzinfo=UTC)
STAMPS = [
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f"),
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S"),
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f"),
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00",
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
]


def _fill(path: Path, seed: int) -> None:
    InboundBuffer(f"sqlite:///{path}").close()
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    for n in range(1, 60):
        when = NOW - timedelta(seconds=rng.choice([0, 10, 299, 300, 301, 600, 5000]))
        claimed_by = rng.choice([None, "run-a", "run-b", ""])
        claimed_at = None if claimed_by is None and rng.random() < 0.7 else rng.choice(STAMPS)(when)
        payload = rng.choice(['{"type":"track","n":' + str(n) + "}", None])
        message = f"m-{n}"
        sql_payload = "?" if payload is not None else "CAST(X'7B2261223A22FF227D' AS TEXT)"
        sql_mid = "?" if rng.random() < 0.8 else "CAST(X'6D2DFF' || ? AS TEXT)"
        params = [x for x in (message if sql_mid == "?" else str(n), payload) if x is not None]
        received = rng.choice(STAMPS)(NOW - timedelta(minutes=n))
        db.execute(
            "INSERT INTO inbound_buffer (message_id, payload, received_at, status, attempts,"
            f" claimed_by, claimed_at, updated_at) VALUES ({sql_mid}, {sql_payload}, ?, ?, ?, ?, ?, ?)",
            [
                *params,
                received,
                rng.choice(["pending"] * 4 + ["done", "failed", "unknown"]),
                rng.choice([0, 1, 2, 3, 4]),
                claimed_by,
                claimed_at,
                received,
            ],
        )
    db.commit()
    db.close()


def _table(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    db.text_factory = bytes
    rows = db.execute("SELECT * FROM inbound_buffer ORDER BY id").fetchall()
    db.close()
    return rows


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"limit": 3},
        {"stale_after_s": 300},
        {"up_to_id": 30, "after_id": 5},
        {"only_claimed": True, "stale_after_s": 300},
        {"only_claimed": True, "stale_after_s": 0},
        {"max_attempts": 1},
        {"after_id": 0, "up_to_id": 0},
    ],
)
def test_claim_sqlite_matches_the_sqlalchemy_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, kwargs: dict
) -> None:
    monkeypatch.setattr(buffer_claims, "_now", lambda: NOW)  # where claim reads it
    _fill(tmp_path / "a.db", seed)
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    args = {"run_id": "run-a", "limit": 25, "max_attempts": 3, **kwargs}
    results = []
    for name, plain in (("a.db", True), ("b.db", False)):
        buf = InboundBuffer(f"sqlite:///{tmp_path / name}")
        try:
            buf.sqlite = plain  # False: the SQLAlchemy statement (FOR UPDATE is not rendered)
            results.append(buf.claim(**args))
        finally:
            buf.sqlite = True
            buf.close()
    assert results[0] == results[1]
    assert _table(tmp_path / "a.db") == _table(tmp_path / "b.db")
