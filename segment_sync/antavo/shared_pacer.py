"""One Antavo rate limit shared by every ingest process: slot reservations in Redis or PostgreSQL.

`Pacer` (pacer.py) spaces the starts of ONE process; two ingest processes on one Antavo account
each pace at the full limit and together provoke 429s. `SharedPacer` keeps the spacing in a store
all of them reach. Each start reserves a slot in one atomic step on the store's own clock:

    slot = max(next, paused_until, now);  next = slot + interval;  wait = slot - now

and the caller sleeps `wait` on its own clock. Only that relative wait crosses the network, so
processes on machines whose clocks disagree still share one spacing. A Retry-After stores
`paused_until = max(paused_until, now + seconds)`, which every process's next reservation honours.

A start that wakes much later than its slot (a stalled event loop) gives the slot up and reserves
again, so late starts never bunch up beyond `MAX_LATENESS_S` (the limiter's headroom absorbs that).

If the store cannot be reached, `acquire` raises `RateLimiterError` (its text never holds the
store's URL or password): the run fails rather than send unpaced.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import sqlalchemy as sa

from segment_sync.antavo.pacer import Pacer, RateLimiter, pacing_interval
from segment_sync.db import create_tables, fingerprint, sqlalchemy_url
from segment_sync.redaction import Redactor, SecretUrl, redact_url

log = logging.getLogger(__name__)

LimiterKind = Literal["local", "redis", "postgres"]
MAX_LATENESS_S = 0.1  # a start later than its slot by more than this reserves a new slot
DEFAULT_KEY_PREFIX = "segment-sync:antavo-rate-limit:"
CONNECT_TIMEOUT_S = 5.0


class RateLimiterError(RuntimeError):
    """The shared limiter's store failed; the message names the setting to check, no secret."""


class ReservationStore(Protocol):
    """Where the shared slots live (Redis or PostgreSQL)."""

    kind: str

    async def reserve(self, interval: float) -> float:
        """Take the next slot; seconds to wait until it (0 when it is now)."""

    async def pause(self, seconds: float) -> None:
        """No slot starts before the store's now + `seconds`."""

    async def aclose(self) -> None: ...


class SharedPacer:
    """Request starts spaced one interval apart across every process sharing `store`."""

    def __init__(
        self,
        per_minute: int,
        store: ReservationStore,
        *,
        redactor: Redactor | None = None,
        fix: str = "check that the shared rate limiter's server is reachable",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_lateness_s: float = MAX_LATENESS_S,
    ) -> None:
        self.interval = pacing_interval(per_minute)
        self.store = store
        self._redactor = redactor or Redactor()
        self._fix = fix
        self._clock = clock
        self._sleep = sleep
        self._max_lateness_s = max_lateness_s
        self._paused_until = 0.0  # this process's own copy, until the store has the pause
        self._pauses: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"SharedPacer({self.store.kind}, interval={self.interval:.4f})"

    async def acquire(self) -> None:
        """Reserve a shared slot and wait for it; a slot slept through is given up."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            wait = await self._store_call(self.store.reserve(self.interval))
            if wait <= 0:
                return
            due = self._clock() + wait
            await self._sleep(wait)
            if self._clock() - due <= self._max_lateness_s:
                return

    def pause(self, seconds: float) -> None:
        """No new request starts for `seconds`, in any process; the store is told in a task."""
        if not math.isfinite(seconds):  # a NaN in the store would hold every process forever
            log.warning("ignored a pause of %r seconds", seconds)
            return
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside an event loop: this process pauses, the store is not told
            return
        task = loop.create_task(self._tell_pause(seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def aclose(self) -> None:
        """Finish telling the store about pauses, then close its connections."""
        if self._pauses:
            await asyncio.gather(*self._pauses, return_exceptions=True)
        await self.store.aclose()

    async def _tell_pause(self, seconds: float) -> None:
        try:
            await self._store_call(self.store.pause(seconds))
        except RateLimiterError as exc:  # the local pause still holds; the next reserve says more
            log.warning("%s", exc)

    async def _store_call(self, call: Awaitable[float | None]) -> float:
        try:
            return float(await call or 0.0)
        except Exception as exc:
            detail = self._redactor.text(f"{type(exc).__name__}: {exc}")
            raise RateLimiterError(
                f"the shared rate limiter ({self.store.kind}) failed: {detail}; {self._fix}"
            ) from None


# -- Redis ------------------------------------------------------------------------------------

# KEYS[1]: a hash {next, paused} (epoch seconds on the Redis clock); ARGV[1]: the interval.
# Lua numbers reach the client as integers, so the wait goes back as a string.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'next', 'paused')
local paused = tonumber(state[2]) or 0
local slot = math.max(tonumber(state[1]) or 0, paused, now)
local nxt = slot + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'next', string.format('%.6f', nxt))
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(nxt, paused) - now) + 3600)
return string.format('%.6f', slot - now)
"""

# KEYS[1]: the same hash; ARGV[1]: seconds to pause from the Redis clock's now.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'next', 'paused')
local paused = math.max(tonumber(state[2]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'paused', string.format('%.6f', paused))
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(tonumber(state[1]) or 0, paused) - now) + 3600)
return string.format('%.6f', paused - now)
"""


class RedisReservations:
    """Slots in one Redis hash, reserved by a Lua script (atomic, on the Redis clock)."""

    kind = "redis"

    def __init__(self, url: str, name: str, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        import redis.asyncio as aioredis

        self.key = key_prefix + name
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=CONNECT_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
        )
        self._reserve = self._redis.register_script(_RESERVE_LUA)
        self._pause = self._redis.register_script(_PAUSE_LUA)

    async def reserve(self, interval: float) -> float:
        return float(await self._reserve(keys=[self.key], args=[repr(interval)]))

    async def pause(self, seconds: float) -> None:
        await self._pause(keys=[self.key], args=[repr(float(seconds))])

    async def aclose(self) -> None:
        await self._redis.aclose()


# -- PostgreSQL -------------------------------------------------------------------------------

METADATA = sa.MetaData()
RATE_LIMIT_TABLE = sa.Table(
    "antavo_rate_limit",
    METADATA,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("next_at", sa.Double, nullable=False, server_default="0"),  # epoch s, server clock
    sa.Column("paused_until", sa.Double, nullable=False, server_default="0"),
)
_NOW = "extract(epoch FROM clock_timestamp())::float8"
# The row lock serialises reservations; SET is evaluated once the lock is held, so `now` is then.
# greatest() skips NULLs: a NaN stored by an older version (Retry-After: nan) is ignored.
_RESERVE_SQL = sa.text(
    "UPDATE antavo_rate_limit SET next_at = greatest(nullif(next_at, 'NaN'), "
    f"nullif(paused_until, 'NaN'), {_NOW}) + :interval "
    f"WHERE name = :name RETURNING next_at - :interval - {_NOW}"
)
_PAUSE_SQL = sa.text(
    "UPDATE antavo_rate_limit SET paused_until = "
    f"greatest(nullif(paused_until, 'NaN'), {_NOW} + :seconds) "
    "WHERE name = :name"
)
_ENSURE_ROW_SQL = sa.text(
    "INSERT INTO antavo_rate_limit (name, next_at, paused_until) VALUES (:name, 0, 0) "
    "ON CONFLICT (name) DO NOTHING"
)


class PostgresReservations:
    """Slots in one row of `antavo_rate_limit`, reserved by an atomic UPDATE on the server clock.

    The blocking driver runs in worker threads (`asyncio.to_thread`), never on the event loop.
    """

    kind = "postgres"

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self._engine = sa.create_engine(
            sqlalchemy_url(url),
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=16,
            connect_args={"connect_timeout": int(CONNECT_TIMEOUT_S)},
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    async def reserve(self, interval: float) -> float:
        return await asyncio.to_thread(self._reserve_now, interval)

    async def pause(self, seconds: float) -> None:
        await asyncio.to_thread(self._pause_now, float(seconds))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._engine.dispose)

    def _ensure_row(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            create_tables(self._engine, METADATA)
            with self._engine.begin() as conn:
                conn.execute(_ENSURE_ROW_SQL, {"name": self.name})
            self._ready = True

    def _reserve_now(self, interval: float) -> float:
        self._ensure_row()
        with self._engine.begin() as conn:
            return float(
                conn.execute(_RESERVE_SQL, {"name": self.name, "interval": interval}).one()[0]
            )

    def _pause_now(self, seconds: float) -> None:
        self._ensure_row()
        with self._engine.begin() as conn:
            conn.execute(_PAUSE_SQL, {"name": self.name, "seconds": seconds})


# -- Building one from settings ----------------------------------------------------------------


def limiter_name(base_url: str | SecretUrl, api_key: str) -> str:
    """Which limit a client shares: its Antavo endpoint and a hash of its key (never the key)."""
    return f"{redact_url(base_url).rstrip('/')} key:{fingerprint(api_key)}"


def build_rate_limiter(
    kind: LimiterKind,
    per_minute: int,
    *,
    url: str | None = None,
    name: str = "",
    url_env: str | None = None,
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> RateLimiter:
    """The local Pacer, or a SharedPacer on the Redis / PostgreSQL server at `url`."""
    if kind == "local":
        return Pacer(per_minute)
    if not url:
        raise ValueError(f"the {kind} rate limiter needs a URL")
    redactor = Redactor([url, *SecretUrl(url).passwords()])
    store: ReservationStore
    try:
        if kind == "redis":
            store = RedisReservations(url, name, key_prefix=key_prefix)
        else:
            store = PostgresReservations(url, name)
    except (ValueError, TypeError, sa.exc.ArgumentError):  # settings check it first
        # The parser's words are left out: they quote what it took for the host or port, which
        # may be a piece of the password too short to mask (`redis://u:k9x/rest@h`).
        setting = f"inbound.rate_limiter_url_env ({url_env})" if url_env else "its URL"
        raise RateLimiterError(
            f"the shared rate limiter ({kind}) cannot read {setting}: its host, port, database "
            "number or options cannot be read; percent-encode '/', '?', '#' and '@' in its "
            "password (%2F, %3F, %23, %40)"
        ) from None
    fix = (
        f"check that inbound.rate_limiter_url_env ({url_env}) names a reachable {kind} server"
        if url_env
        else f"check that the {kind} server is reachable"
    )
    return SharedPacer(per_minute, store, redactor=redactor, fix=fix)
