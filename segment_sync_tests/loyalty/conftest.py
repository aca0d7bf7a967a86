"""The loyalty store on both databases it supports, for every test in this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from segment_sync.loyalty.store import LoyaltyStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[LoyaltyStore]:
    url = (
        f"sqlite:///{tmp_path}/loyalty.db"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    store = LoyaltyStore(url)
    yield store
    store.close()
