"""Generated passwords in every URL setting, through real runs: they reach no output, no log row,
no row of the state database and no connection error.

Real parts: the Segment and Antavo stand-ins on loopback, PostgreSQL for the loyalty store, the
outbound state and the webhook buffer (the test server trusts local connections, so any
password connects), the CLI in process, the Parquet logs read back with DuckDB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from segment_sync.cli import main
from segment_sync.db import sqlalchemy_url
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync.standins.antavo import AntavoStandin
from segment_sync.standins.segment import SegmentFaults, SegmentStandin
from segment_sync.standins.server import free_port, serve_in_thread
from segment_sync_tests.conftest import (
    ANTAVO_KEY,
    ANTAVO_SECRET,
    WEBHOOK_SECRET,
    WRITE_KEY,
    fresh_pg_database,
)
from segment_sync_tests.url_passwords import (
    Password,
    database_rows,
    leaked_rows,
    log_rows,
    passwords,
    with_password,
)

ENV = {
    "SEGMENT_WRITE_KEY": WRITE_KEY,
    "ANTAVO_API_KEY": ANTAVO_KEY,
    "ANTAVO_API_SECRET": ANTAVO_SECRET,
    "SEGMENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
}
ORDERS = {"name": "Orders", "action": "loyalty_event", "fields": {"action": "purchase"}}


@dataclass(frozen=True)
class World:
    pg_url: str  # postgresql://postgres@127.0.0.1:5432/<fresh database>, no password
    segment_url: str
    antavo_url: str
    root: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    segment = SegmentStandin("us", {WRITE_KEY: "us"}, SegmentFaults(seed=5))
    antavo = AntavoStandin(ANTAVO_KEY, ANTAVO_SECRET, stack="test", seed=5)
    with (
        fresh_pg_database() as pg_url,
        serve_in_thread(segment.app) as segment_url,
        serve_in_thread(antavo.app) as antavo_url,
    ):
        yield World(pg_url, segment_url, antavo_url, tmp_path_factory.mktemp("url-passwords"))


def _write(folder: Path, name: str, data: dict) -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def _cli(*args: str) -> str:
    result = CliRunner(env=ENV).invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def _database(world: World, password: Password, db: str | None = None) -> str:
    """The test database (or `db` on a closed port) with the generated password."""
    url = world.pg_url if db is None else f"postgresql://postgres@127.0.0.1:{free_port()}/{db}"
    return with_password(url.replace("postgres@", "", 1), "postgres", password)


@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords(for_http=True), db_password=passwords(for_http=False))
def test_url_passwords_reach_no_output_log_row_state_row_or_connection_error(
    world, password, db_password
):
    folder = world.root / uuid.uuid4().hex[:8]
    folder.mkdir()
    database = _database(world, db_password)
    data = {
        "loyalty_store": {"url": database},
        "outbound": {
            "base_url": with_password(world.segment_url, "sync", password),
            "state_url": database,
            "event_sync": ["point_add"],
            "max_retries": 0,
        },
        "inbound": {
            "base_url": with_password(world.antavo_url, "sync", password),
            "buffer_url": database,
            "mappings": [ORDERS],
            "max_retries": 0,
        },
        "alerts": {"ui_base_url": with_password("http://dagster.example:3000", "ops", password)},
        "logs": {"dir": str(folder / "logs")},
    }
    path = _write(folder, "settings.yaml", data)
    loaded = load_settings(path)
    # Closed at once: each generated example would otherwise keep its connections open, and
    # PostgreSQL's 100 run out while hypothesis shrinks a failure.
    store = LoyaltyStore(loaded.loyalty_store.url)
    store.append_events([NewEvent(f"c-{i}", "point_add", {"i": i}) for i in range(3)])
    store.close()
    buffer = InboundBuffer(loaded.inbound.buffer_url)
    buffer.add_many(
        [{"type": "track", "event": "Order", "userId": "c-1", "messageId": uuid.uuid4().hex}]
    )
    buffer.close()
    outputs = {
        "settings check": _cli("settings", "check", "--settings", path),
        "run outbound": _cli("run", "outbound", "--settings", path),
        "mappings preview": _cli("mappings", "preview", "--settings", path),
        "run inbound": _cli("run", "inbound", "--settings", path),
    }
    closed_database = _database(world, db_password, db="gone")
    closed_segment = with_password(f"http://127.0.0.1:{free_port()}", "sync", password)
    for name, section, key, url in [
        ("state database down", "outbound", "state_url", closed_database),
        ("store down", "loyalty_store", "url", closed_database),
        ("buffer down", "inbound", "buffer_url", closed_database),
        ("segment down", "outbound", "base_url", closed_segment),
    ]:
        broken = {**data, section: {**data[section], key: url}}
        command = ("run", "inbound") if key == "buffer_url" else ("run", "outbound")
        outputs[name] = _cli(*command, "--settings", _write(folder, f"{name}.yaml", broken))

    for name, text in outputs.items():
        for p in (password, db_password):
            assert not p.leaks_in(text), f"{name}:\n{text}"
    for p in (password, db_password):
        assert leaked_rows(log_rows(folder / "logs"), p) == []
        assert leaked_rows(database_rows(sqlalchemy_url(world.pg_url)), p) == []
    # What the user sees instead: the URL with its password masked, and why it failed.
    assert "endpoint http://sync:[REDACTED]@127.0.0.1" in outputs["settings check"]
    assert "(http://sync:[REDACTED]@127.0.0.1" in outputs["mappings preview"]
    assert "succeeded" in outputs["run outbound"], outputs["run outbound"]
    assert "succeeded" in outputs["run inbound"], outputs["run inbound"]  # URL creds not sent
    assert "cannot use the database" in outputs["state database down"]
    assert "POST http://sync:[REDACTED]@127.0.0.1" in outputs["segment down"]
    masked = [row for row in log_rows(folder / "logs") if "sync:[REDACTED]@127.0.0.1" in repr(row)]
    assert masked, "the outbound log names the endpoint, masked"
