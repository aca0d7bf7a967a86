"""Per-destination progress, locks and shards: one destination down does not hold the other."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.outbound.state import progress
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import routed_settings, two_regions
from segment_sync_tests.outbound.test_regions import seed


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def _progress(settings) -> list[tuple[str, str, int]]:
    """(endpoint, stream, delivered up to) of every progress row."""
    engine = sa.create_engine(settings.outbound.state_url.reveal())
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(progress.c.destination, progress.c.stream, progress.c.delivered_upto)
        ).fetchall()
    engine.dispose()
    return sorted((d.split(" key:")[0], s, n) for d, s, n in rows)


def _upto(settings, standin) -> int | None:
    found = [n for d, _, n in _progress(settings) if d == standin.url.rstrip("/")]
    return found[0] if found else None


def test_a_destination_that_is_down_leaves_its_rows_pending_while_the_other_delivers(
    write_settings, regions
):
    settings = load_settings(routed_settings(write_settings, regions))
    settings = load_settings(_with(settings, max_retries=0))
    seed(settings, {"anna": "DE", "bob": "US"}, events_each=2)
    regions.eu.set_faults(outage_requests=5)
    lines: list[str] = []

    assert not run_manual_outbound(settings, "events", "run-outage", echo=lines.append)
    assert regions.eu.messages == [] and len(regions.us.messages) == 2
    assert (_upto(settings, regions.eu), _upto(settings, regions.us)) == (None, 4)

    regions.eu.set_faults(outage_requests=0)
    assert run_manual_outbound(settings, "events", "run-again", echo=lambda _: None)
    assert {m["userId"] for m in regions.eu.messages} == {"anna"}
    assert len(regions.us.messages) == 2  # nothing resent to the US
    assert (_upto(settings, regions.eu), _upto(settings, regions.us)) == (4, 4)


def _with(settings, **outbound) -> str:
    """The settings file with these outbound keys changed; returns its path."""
    import os

    path = os.environ["SEGMENT_SYNC_SETTINGS"]
    with open(path) as file:
        data = yaml.safe_load(file)
    data["outbound"].update(outbound)
    with open(path, "w") as file:
        file.write(yaml.safe_dump(data))
    return path


def test_each_destination_is_split_into_its_own_shards(write_settings, regions):
    settings = load_settings(routed_settings(write_settings, regions))
    settings = load_settings(_with(settings, shards=2))
    customers = {f"c-{i}": ("DE" if i % 2 else "US") for i in range(12)}
    seed(settings, customers, events_each=2)

    assert run_manual_outbound(settings, "events", "run-sharded", echo=lambda _: None)

    assert len(regions.eu.messages) == len(regions.us.messages) == 12
    streams = [(d, s) for d, s, _ in _progress(settings)]
    assert len(set(streams)) == 4  # two destinations x two shards
    assert {s for _, s in streams} == {"events/shard-0-of-2", "events/shard-1-of-2"}
