"""The shared Antavo rate limit (antavo/shared_pacer.py) on real Redis and PostgreSQL servers.

Redis: database 12 of $SEGMENT_SYNC_TEST_REDIS_URL (default redis://127.0.0.1:6379); skipped when it cannot be
reached, except under SEGMENT_SYNC_CI=1, where that fails. PostgreSQL: the `pg_url` fixture.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.antavo.pacer import Pacer
from segment_sync.antavo.shared_pacer import (
    DEFAULT_KEY_PREFIX,
    PostgresReservations,
    RateLimiterError,
    RedisReservations,
    SharedPacer,
    build_rate_limiter,
    limiter_name,
)
from segment_sync.cli.main import main
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.settings import SettingsError, parse_settings
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, REDIS_SERVER, require_redis
from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT, orders

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = f"{REDIS_SERVER}/12"
URL_ENV = "ANTAVO_RATE_LIMIT_URL"


@pytest.fixture
def redis_url() -> str:
    return require_redis(REDIS_URL)


@pytest.fixture
def key_prefix(redis_url):
    """A key prefix of this test alone; its keys are deleted afterwards."""
    import redis

    prefix = f"segment-sync-test:{uuid.uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def _stores(kind: str, request, count: int) -> list:
    """`count` independent connections to one limit (as `count` processes would hold)."""
    name = f"test-{uuid.uuid4().hex}"
    if kind == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("key_prefix")
        return [RedisReservations(url, name, key_prefix=prefix) for _ in range(count)]
    url = request.getfixturevalue("pg_url")
    return [PostgresReservations(url, name) for _ in range(count)]


STORES = [
    pytest.param("redis", id="redis"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


# -- the reservation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STORES)
def test_concurrent_reservations_from_two_connections_get_slots_one_interval_apart(kind, request):
    a, b = _stores(kind, request, 2)
    interval = 10.0  # only reserved here, never slept: the slots are far apart on purpose

    async def go() -> tuple[list[float], float]:
        try:
            waits = await asyncio.gather(*(s.reserve(interval) for s in [a, b] * 40))
            return sorted(waits), await a.reserve(interval)
        finally:
            await a.aclose()
            await b.aclose()

    waits, after = asyncio.run(go())
    assert waits[0] <= 1e-3  # a fresh limit: the first start is now
    gaps = [later - earlier for earlier, later in zip(waits, waits[1:], strict=False)]
    # Each slot is one interval after the previous one, less the time between the two calls:
    # no two callers share a slot, none skips one.
    assert all(0 < gap <= interval + 1e-3 for gap in gaps), gaps
    assert 80 * interval - interval / 2 < after <= 80 * interval + 1e-3


@pytest.mark.parametrize("kind", STORES)
def test_a_pause_in_one_process_delays_the_next_slot_of_another(kind, request):
    a, b = _stores(kind, request, 2)

    async def go() -> tuple[float, float]:
        first = await b.reserve(0.01)
        pacer = SharedPacer(6000, a)
        pacer.pause(30.0)  # sync, as the retry policy calls it; told to the store in a task
        await pacer.aclose()  # waits for that task
        try:
            return first, await b.reserve(0.01)
        finally:
            await b.aclose()

    first, paused = asyncio.run(go())
    assert first <= 1e-3
    assert 29.0 < paused <= 30.0 + 1e-3


@pytest.mark.parametrize("kind", STORES)
def test_a_non_finite_pause_is_not_shared(kind, request):
    a, b = _stores(kind, request, 2)

    async def go() -> float:
        pacer = SharedPacer(6000, a)
        pacer.pause(float("nan"))  # stored, NaN held every process's next slot forever
        pacer.pause(float("inf"))
        await pacer.aclose()
        try:
            return await b.reserve(0.01)
        finally:
            await b.aclose()

    assert asyncio.run(go()) <= 1e-3  # False for NaN


@pytest.mark.postgres
def test_a_nan_stored_by_an_older_version_no_longer_holds_the_limit(request):
    (store,) = _stores("postgres", request, 1)

    async def go() -> tuple[float, float]:
        try:
            await store.pause(float("nan"))  # what an older client stored for Retry-After: nan
            return await store.reserve(10.0), await store.reserve(10.0)  # reserved, not slept
        finally:
            await store.aclose()

    first, second = asyncio.run(go())
    assert first <= 1e-3 and 9.0 < second <= 10.0 + 1e-3  # False for NaN


@pytest.mark.parametrize("kind", STORES)
def test_shared_pacers_on_one_limit_start_requests_one_interval_apart(kind, request):
    """Two pacers (two processes' worth) acquiring together: starts follow the shared slots."""
    a, b = _stores(kind, request, 2)
    pacers = [SharedPacer(60_000, a), SharedPacer(60_000, b)]  # ~1 ms apart: the test is short
    starts: list[float] = []

    async def worker(pacer: SharedPacer) -> None:
        for _ in range(25):
            await pacer.acquire()
            starts.append(time.monotonic())

    async def go() -> None:
        try:
            await asyncio.gather(*(worker(p) for p in pacers for _ in range(4)))
        finally:
            for p in pacers:
                await p.aclose()

    began = time.monotonic()
    asyncio.run(go())
    starts.sort()
    assert len(starts) == 200
    # No start is early: the k-th start is at least k intervals after the pacers began. Measured
    # from `began`, not from the first start: a busy machine can record the first start late,
    # and lateness only ever delays starts, so this bound holds however busy the machine is.
    interval = pacers[0].interval
    assert all(s - began >= k * interval - 2e-3 for k, s in enumerate(starts))


# -- SharedPacer's own logic, on virtual time --------------------------------------------------


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.oversleep: list[float] = []  # extra seconds added to the next sleeps

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds) + (self.oversleep.pop(0) if self.oversleep else 0.0)


class VirtualStore:
    """The reservation rule on the virtual clock, as the servers apply it on theirs."""

    kind = "virtual"

    def __init__(self, vt: VirtualTime) -> None:
        self.vt, self.next, self.paused, self.reservations = vt, 0.0, 0.0, 0

    async def reserve(self, interval: float) -> float:
        self.reservations += 1
        slot = max(self.next, self.paused, self.vt.now)
        self.next = slot + interval
        return slot - self.vt.now

    async def pause(self, seconds: float) -> None:
        self.paused = max(self.paused, self.vt.now + seconds)

    async def aclose(self) -> None:
        pass


def _virtual_starts(pacer: SharedPacer, vt: VirtualTime, n: int) -> list[float]:
    starts = []

    async def go() -> None:
        for _ in range(n):
            await pacer.acquire()
            starts.append(vt.now)

    asyncio.run(go())
    return starts


def test_reservations_space_starts_one_interval_apart_at_98_percent_of_the_limit() -> None:
    vt = VirtualTime()
    pacer = SharedPacer(600, VirtualStore(vt), clock=vt.clock, sleep=vt.sleep)
    starts = _virtual_starts(pacer, vt, 20)
    assert pacer.interval == pytest.approx(60 / (600 * 0.98)) == Pacer(600).interval
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == pytest.approx(
        [pacer.interval] * 19
    )


def test_a_start_that_wakes_long_after_its_slot_reserves_a_new_one() -> None:
    vt = VirtualTime()
    store = VirtualStore(vt)
    pacer = SharedPacer(600, store, clock=vt.clock, sleep=vt.sleep)
    _virtual_starts(pacer, vt, 1)
    vt.oversleep = [5.0]  # the event loop stalls through the second slot
    (start,) = _virtual_starts(pacer, vt, 1)
    assert store.reservations == 3  # the stale slot was given up, not used late
    assert start == store.next - pacer.interval  # the start is on its (new) slot


def test_a_pause_holds_this_process_even_before_the_store_has_it() -> None:
    vt = VirtualTime()
    store = VirtualStore(vt)
    pacer = SharedPacer(600, store, clock=vt.clock, sleep=vt.sleep)
    pacer.pause(7.0)  # outside an event loop: the store is not told, this process still waits
    (start,) = _virtual_starts(pacer, vt, 1)
    assert start >= 1007.0 and store.paused == 0.0


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("redis", "redis://user:hunter2-pw-not-for-logs@127.0.0.1:1/0"),
        ("postgres", "postgresql://user:hunter2-pw-not-for-logs@127.0.0.1:1/db"),
    ],
)
def test_an_unreachable_store_is_a_clear_error_without_its_password(kind, url) -> None:
    pacer = build_rate_limiter(kind, 1500, url=url, name="x", url_env=URL_ENV)

    async def go() -> None:
        try:
            await pacer.acquire()
        finally:
            await pacer.aclose()

    with pytest.raises(RateLimiterError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert f"shared rate limiter ({kind}) failed" in message
    assert f"inbound.rate_limiter_url_env ({URL_ENV})" in message
    assert "hunter2" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("redis", "redis://u:PWHEADsecret/PWTAILrest@127.0.0.1:6379/0"),
        ("redis", "redis://u:PWHEADsecret?PWTAILrest@127.0.0.1:6379/0"),
        ("postgres", "postgresql://u:PWHEADsecretPWTAILrest@127.0.0.1:notaport/db"),
        ("redis", "redis://u:k9x/PWTAILrest@127.0.0.1:6379/0"),  # a start too short to mask
    ],
)
def test_a_url_its_client_cannot_read_is_a_clear_error_without_any_piece_of_its_password(
    kind, url
) -> None:
    """What the settings refuse first (Settings.rate_limiter_url); built from code anyway, the
    parser's error (which quotes the password's start as the port) is masked."""
    with pytest.raises(RateLimiterError) as caught:
        build_rate_limiter(kind, 1500, url=url, name="x", url_env=URL_ENV)
    message = str(caught.value)
    assert f"shared rate limiter ({kind}) cannot read inbound.rate_limiter_url_env" in message
    assert "PWHEAD" not in message and "PWTAIL" not in message, message
    assert "k9x" not in message, message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- settings and the factory --------------------------------------------------------------------


def test_the_default_limiter_is_local_and_needs_no_url() -> None:
    settings = parse_settings({})
    assert settings.inbound.rate_limiter == "local" and settings.rate_limiter_url() is None
    assert isinstance(factory.rate_limiter_factory(settings, ANTAVO_KEY)(), Pacer)


def test_a_shared_limiter_without_url_env_is_refused_naming_the_setting() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"inbound": {"rate_limiter": "redis"}})
    assert "rate_limiter_url_env must name the environment variable" in str(caught.value)


def test_an_unset_or_wrong_url_variable_is_a_clear_error_that_never_shows_the_url(
    monkeypatch,
) -> None:
    settings = parse_settings(
        {"inbound": {"rate_limiter": "redis", "rate_limiter_url_env": URL_ENV}}
    )
    assert URL_ENV in settings.secret_env_names()
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(SettingsError) as caught:
        settings.rate_limiter_url()
    assert f"environment variable {URL_ENV} is not set; export {URL_ENV}=redis://" in str(
        caught.value
    )
    monkeypatch.setenv(URL_ENV, "postgresql://u:hunter2-pw@db/x")
    with pytest.raises(SettingsError) as caught:
        settings.rate_limiter_url()
    assert f"the value of {URL_ENV} is not a redis URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2-pw@127.0.0.1:notaport/db",
        "postgresql://u:hunter2-pw@127.0.0.1:99999/db",  # read, but no port there is
    ],
)
def test_a_postgres_limiter_url_is_checked_as_every_database_url_is(monkeypatch, url) -> None:
    """The same reading and port check as the buffer's and the store's URLs, at load."""
    settings = parse_settings(
        {"inbound": {"rate_limiter": "postgres", "rate_limiter_url_env": URL_ENV}}
    )
    monkeypatch.setenv(URL_ENV, url)
    with pytest.raises(SettingsError) as caught:
        settings.rate_limiter_url()
    message = str(caught.value)
    assert f"the value of {URL_ENV} cannot be read as a postgres URL" in message
    assert "a number from 1 to 65535" in message and "hunter2" not in message


def test_run_inbound_with_the_url_variable_unset_is_one_error_without_traceback(
    write_settings, monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    path = write_settings(
        inbound={
            "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
            "rate_limiter": "postgres",
            "rate_limiter_url_env": URL_ENV,
        }
    )
    result = CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])
    assert result.exit_code == 1
    assert f"environment variable {URL_ENV} is not set" in result.output
    assert "inbound.rate_limiter: local" in result.output and "Traceback" not in result.output


def test_the_factory_names_the_shared_limit_by_endpoint_and_key_hash(
    redis_url, monkeypatch
) -> None:
    monkeypatch.setenv(URL_ENV, redis_url)
    settings = parse_settings(
        {
            "inbound": {
                "base_url": "http://127.0.0.1:8701",
                "rate_limiter": "redis",
                "rate_limiter_url_env": URL_ENV,
                "rate_limit_per_minute": 1200,
            }
        }
    )
    pacer = factory.rate_limiter_factory(settings, ANTAVO_KEY)()
    assert isinstance(pacer, SharedPacer) and pacer.interval == Pacer(1200).interval
    key = pacer.store.key
    assert key == DEFAULT_KEY_PREFIX + limiter_name("http://127.0.0.1:8701", ANTAVO_KEY)
    assert ANTAVO_KEY not in key and "127.0.0.1:8701" in key
    other = limiter_name("http://127.0.0.1:8701", "another-antavo-key")
    assert other != limiter_name("http://127.0.0.1:8701", ANTAVO_KEY)  # accounts never share
    asyncio.run(pacer.aclose())


# -- two real ingest processes, one limit ----------------------------------------------------

PER_MINUTE = 1500
WINDOW_S = 10.0  # the stand-in's window, scaled down from 60 s: capacity 250 requests
CAPACITY = int(PER_MINUTE * WINDOW_S / 60)
EVENTS = 25_000  # 500 requests of 50: two windows' worth at least
PROCESSES = 2
CHUNK = 2500  # 50 requests a claim: each process alone keeps up with the full limit
# The control's limit is low enough that each process alone reaches it even on a busy machine
# (a process managed about 6 requests/s while another test ran), so two local limiters go
# well over it within the first window, before the 429s' Retry-After slows them down.
CONTROL_PER_MINUTE = 240  # 4 requests/s, capacity 40 per window
CONTROL_EVENTS = 7_500  # 150 requests: more than three windows' worth


def _standin(per_minute: int):
    """A rate-limited Antavo stand-in that also records when it admitted each request."""
    from segment_sync.standins.antavo import AntavoStandin

    class Recording(AntavoStandin):
        admitted: list[float]

        def _admit(self) -> None:
            super()._admit()  # raises the 429 rejection when the window is full
            self.admitted.append(time.monotonic())

    stand = Recording(
        ANTAVO_KEY,
        ANTAVO_SECRET,
        stack="test",
        rate_limit_per_minute=per_minute,
        rate_limit_window_s=WINDOW_S,
    )
    stand.admitted = []
    return stand


def most_in_window(times: list[float], window_s: float) -> int:
    """The most of `times` inside any window of `window_s` (sliding, as the stand-in counts)."""
    times = sorted(times)
    most = lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window_s:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _requests_by_run(logs_dir: str) -> dict[str, list[float]]:
    """Each run's request start times, from inbound_log (a row per event of a request)."""
    from segment_sync.logs.views import connect

    con = connect(logs_dir)
    try:
        rows = con.execute(
            "SELECT run_id, min(timestamp) FROM inbound_log GROUP BY run_id, identifier"
        ).fetchall()
    finally:
        con.close()
    runs: dict[str, list[float]] = {}
    for run_id, started in rows:
        runs.setdefault(run_id, []).append(started.timestamp())
    return runs


def _spans(log: dict[str, list[float]]) -> str:
    """Each run's requests and the seconds from the first run's first request it spans."""
    t0 = min(min(starts) for starts in log.values())
    return ", ".join(
        f"{len(s)} requests {min(s) - t0:.1f}-{max(s) - t0:.1f} s"
        for s in sorted(log.values(), key=min)
    )


def _two_ingests(
    limiter: str,
    limiter_url: str | None,
    pg_url,
    write_settings,
    monkeypatch,
    tmp_path,
    per_minute: int = PER_MINUTE,
    events: int = EVENTS,
):
    """Two `segment-sync run inbound` processes on one PostgreSQL buffer; what they caused."""
    from segment_sync.standins.server import serve_in_thread

    stand = _standin(per_minute)
    buffer = InboundBuffer(pg_url)
    items = orders(events)
    for start in range(0, events, 5000):
        buffer.add_many(items[start : start + 5000])
    buffer.close()
    with serve_in_thread(stand.app) as standin_url:
        inbound = {
            "base_url": standin_url,
            "buffer_url": pg_url,
            "mappings": [CHECKOUT],
            "rate_limit_per_minute": per_minute,
            "rate_limiter": limiter,
            "chunk_size": CHUNK,
        }
        if limiter_url:
            monkeypatch.setenv(URL_ENV, limiter_url)
            inbound["rate_limiter_url_env"] = URL_ENV
        path = write_settings(inbound=inbound)
        command = [sys.executable, "-m", "segment_sync.cli", "run", "inbound"]
        runs = [
            subprocess.Popen(
                [*command, "--settings", str(path)],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        stats = stand.stats()
    if limiter == "redis":  # the limit's key (the stand-in's port makes it this test's own)
        import redis

        with redis.Redis.from_url(limiter_url) as client:
            client.delete(DEFAULT_KEY_PREFIX + limiter_name(standin_url, ANTAVO_KEY))
    return {
        "stats": stats,
        "admitted": list(stand.admitted),
        "mids": Counter(e["data"]["mid"] for e in stand.events),
        "outputs": outputs,
        "codes": [run.returncode for run in runs],
        "log": _requests_by_run(str(tmp_path / "logs")),
        "buffer": InboundBuffer(pg_url).counts(),
    }


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("limiter", ["redis", "postgres"])
def test_two_ingest_processes_sharing_the_limit_never_exceed_it(
    limiter, request, pg_url, write_settings, monkeypatch, tmp_path
):
    limiter_url = request.getfixturevalue("redis_url") if limiter == "redis" else pg_url
    seen = _two_ingests(limiter, limiter_url, pg_url, write_settings, monkeypatch, tmp_path)
    stats, log = seen["stats"], seen["log"]
    most = most_in_window(seen["admitted"], WINDOW_S)
    most_logged = most_in_window([t for starts in log.values() for t in starts], WINDOW_S)
    print(
        f"\n{limiter}: {stats['requests']} requests, {stats['rate_limited']} x 429, statuses "
        f"{stats['requests_by_status']}; most admitted in a {WINDOW_S:g} s window {most}, most "
        f"started (inbound_log) {most_logged}, capacity {CAPACITY}; requests per run "
        f"{sorted(len(s) for s in log.values())}\n" + "".join(seen["outputs"])
    )
    assert seen["codes"] == [0] * PROCESSES, seen["outputs"]
    assert len(log) == PROCESSES and all(log.values())  # both processes sent requests
    # The pacers' starts keep to the limit (most_logged below, measured where they start). At
    # the server, arrivals bunch by the busy machine's scheduling delay: the 2 % headroom
    # (pacer.RATE_HEADROOM) absorbs 0.2 s of it in this scaled-down 10 s window (1.2 s in
    # Antavo's 60 s one), so a loaded CI run sees a few 429s, which the client then waits out
    # (9 of 509 at load 12 in one CI run). What shows the limit is shared is where the pacers
    # start (most_logged): unshared limiters start more than the limit allows (the control
    # below: 42 of 40). The 429s at the server stay a small share whatever the load.
    assert stats["rate_limited"] <= stats["requests"] // 20, stats
    assert set(stats["requests_by_status"]) <= {"200", "429"}
    assert seen["mids"] == Counter({f"o-{i}": 1 for i in range(EVENTS)})  # each exactly once
    assert seen["buffer"]["done"] == EVENTS
    assert stats["requests"] > CAPACITY  # more than one window's worth: the limit mattered
    assert most <= CAPACITY
    assert most_logged <= CAPACITY


@pytest.mark.slow
@pytest.mark.postgres
def test_control_two_ingest_processes_with_local_limiters_do_get_429s(
    pg_url, write_settings, monkeypatch, tmp_path
):
    """Proves the test above can fail: each process alone paces to the full limit."""
    seen = _two_ingests(
        "local", None, pg_url, write_settings, monkeypatch, tmp_path,
        per_minute=CONTROL_PER_MINUTE, events=CONTROL_EVENTS,
    )  # fmt: skip
    stats = seen["stats"]
    capacity = int(CONTROL_PER_MINUTE * WINDOW_S / 60)
    most_logged = most_in_window([t for s in seen["log"].values() for t in s], WINDOW_S)
    print(
        f"\nlocal: {stats['requests']} requests, {stats['rate_limited']} x 429; most started "
        f"(inbound_log) in a {WINDOW_S:g} s window {most_logged}, capacity {capacity}; runs "
        f"{_spans(seen['log'])}\n" + "".join(seen["outputs"])
    )
    assert len(seen["log"]) == PROCESSES and all(seen["log"].values())
    # Together they reach the window's capacity in about half of it, so 429s are certain; after
    # the first ones, Retry-After pauses both, which keeps the starts near the capacity.
    assert stats["rate_limited"] > 0
