"""Shared fixtures: real servers on loopback, real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

from segment_sync_tests.logs.s3_fixtures import refusing_s3, s3_server, s3_url  # noqa: F401 - the local S3

# No per-example deadline: CI shares 2 cores with other work, and a slow example is not a bug.
settings.register_profile("segment_sync", deadline=None)
settings.load_profile("segment_sync")


@pytest.fixture(autouse=True)
def stop_signals_as_a_terminal_leaves_them() -> None:
    """Each test starts with SIGINT raising KeyboardInterrupt and SIGTERM's default action, as
    in a terminal. A shell that starts the suite in the background leaves both ignored, an
    earlier test or a library may leave a handler behind, and the processes a test starts inherit
    an ignored signal, so a test of Ctrl-C or SIGTERM would see its signal dropped."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


PG_URL = os.environ.get("SEGMENT_SYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The Redis server (no database number): the Celery tests take databases 10 and 11, the shared
# rate limiter's tests 12.
REDIS_SERVER = os.environ.get("SEGMENT_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards; skips on SEGMENT_SYNC_TEST_PG_URL=skip."""
    if PG_URL == "skip":
        pytest.skip("SEGMENT_SYNC_TEST_PG_URL=skip")
    name = f"ss_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_sqlalchemy_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def require_redis(url: str) -> str:
    """`url` if its Redis answers; else skip, or fail under SEGMENT_SYNC_CI=1 (`.ci/run`)."""
    import redis

    from segment_sync.redaction import mask_url_passwords

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        message = f"no Redis at {mask_url_passwords(url)}: {exc}; set SEGMENT_SYNC_TEST_REDIS_URL"
        if os.environ.get("SEGMENT_SYNC_CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database URL for one test."""
    with fresh_pg_database() as url:
        yield url


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


WRITE_KEY = "test-us-write-key-0123456789"
EU_WRITE_KEY = "test-eu-write-key-9876543210"
ANTAVO_KEY = "antavo-test-key-0001"
ANTAVO_SECRET = "antavo-test-secret-0123456789"
WEBHOOK_SECRET = "webhook-shared-secret-42"


@pytest.fixture
def segment_standin():
    """A Segment stand-in (us region) in a thread on loopback; `.url` is its base URL."""
    from segment_sync.standins.segment import SegmentFaults, SegmentStandin
    from segment_sync.standins.server import serve_in_thread

    stand = SegmentStandin("us", {WRITE_KEY: "us", EU_WRITE_KEY: "eu"}, SegmentFaults(seed=42))
    with serve_in_thread(stand.app) as url:
        stand.url = url
        yield stand


@pytest.fixture
def strict_segment_standin():
    """A Segment stand-in (us) with `strict_auth`: 401 for an unknown or other-region key.

    NOT Segment's documented behaviour (it answers 200 and drops the messages): only for tests
    of how the sync handles a 401, should Segment ever answer one."""
    from segment_sync.standins.segment import SegmentStandin
    from segment_sync.standins.server import serve_in_thread

    stand = SegmentStandin("us", {WRITE_KEY: "us", EU_WRITE_KEY: "eu"}, strict_auth=True)
    with serve_in_thread(stand.app) as url:
        stand.url = url
        yield stand


@pytest.fixture
def write_settings(tmp_path, monkeypatch):
    """Writes a settings file under tmp_path (stores, logs there) and points the env at it."""
    import yaml

    monkeypatch.setenv("SEGMENT_WRITE_KEY", WRITE_KEY)
    monkeypatch.setenv("ANTAVO_API_KEY", ANTAVO_KEY)
    monkeypatch.setenv("ANTAVO_API_SECRET", ANTAVO_SECRET)

    def write(**sections) -> Path:
        data = {
            "general": {"customer_id_mapping": "customer_id"},
            "loyalty_store": {"url": f"sqlite:///{tmp_path}/loyalty.db"},
            "outbound": {
                "base_url": None,
                "event_sync": ["point_add", "checkout", "purchase"],
                "customer_fields_sync": ["first_name", "last_name", "email"],
                "state_url": f"sqlite:///{tmp_path}/state.db",
                "backoff_cap_s": 0.2,
                "follow_s": 0,  # sensor runs do one pass; the follow tests set their own
            },
            "logs": {"dir": str(tmp_path / "logs")},
        }
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        path = tmp_path / "segment_sync.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("SEGMENT_SYNC_SETTINGS", str(path))
        return path

    return write


@pytest.fixture
def antavo_standin(tmp_path, monkeypatch):
    """An Antavo stand-in on loopback that registers events in tmp_path's loyalty store."""
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.standins.antavo import AntavoStandin
    from segment_sync.standins.loyalty_sink import LoyaltySink
    from segment_sync.standins.server import serve_in_thread

    monkeypatch.setenv("ANTAVO_API_KEY", ANTAVO_KEY)
    monkeypatch.setenv("ANTAVO_API_SECRET", ANTAVO_SECRET)
    monkeypatch.setenv("SEGMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    store = LoyaltyStore(f"sqlite:///{tmp_path}/loyalty.db")
    stand = AntavoStandin(
        ANTAVO_KEY, ANTAVO_SECRET, stack="test", seed=3, on_event=LoyaltySink(store)
    )
    with serve_in_thread(stand.app) as url:
        stand.url = url
        yield stand


@contextmanager
def _tmpfs(tmp_path: Path, name: str, options: str) -> Iterator[Path]:
    """A tmpfs mounted at tmp_path/name with `options`; the test skipped where mounting is denied."""
    mount_point = tmp_path / name
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs mounted for the test (a disk that fills up); skipped where mounting is denied."""
    with _tmpfs(tmp_path, "small-disk", "size=2m") as mount_point:
        yield mount_point


@pytest.fixture
def roomy_tmpfs(tmp_path: Path):
    """A 16 MiB tmpfs: a disk to fill up that first holds a few runs' logs, their request
    bodies uncompressed until a merge (logs/layout.py, RAW_BODIES)."""
    with _tmpfs(tmp_path, "roomy-disk", "size=16m") as mount_point:
        yield mount_point


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder on a read-only filesystem (a tmpfs mounted read-only); skipped where mounting
    is denied."""
    with _tmpfs(tmp_path, "read-only", "ro,size=1m") as mount_point:
        yield mount_point
