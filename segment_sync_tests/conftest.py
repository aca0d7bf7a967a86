"""Shared fixtures: real servers on loopback, real databases."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("SEGMENT_SYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL schema-isolated database URL; skips only when SEGMENT_SYNC_TEST_PG_URL=skip."""
    if PG_URL == "skip":
        pytest.skip("SEGMENT_SYNC_TEST_PG_URL=skip")
    name = f"ss_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_sqlalchemy_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
