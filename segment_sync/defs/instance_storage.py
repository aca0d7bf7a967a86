"""Prepare a Dagster instance's storage once, however many processes start on it at the same time.

dagster-postgres creates its tables when the first process opens a fresh database, and two
processes doing so at once both try (`type "event_logs" already exists`). Workers, the daemon
and the webserver of one deployment start together, so each calls `prepare_instance` first: it
creates or migrates the storage under a PostgreSQL advisory lock (an flock for SQLite storage,
which lives on one machine), and the processes behind it find the tables there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from segment_sync.locks import file_lock
from segment_sync.redaction import Redactor, SecretUrl, redact_url

# An arbitrary constant: the advisory lock that serialises preparing one instance database.
ADVISORY_LOCK_KEY = 0x5E6_5711C
_WAIT_S = 600


class InstancePrepareError(RuntimeError):
    """The instance storage could not be prepared; the message names what to fix."""


def prepare_instance(home: Path | None = None) -> str:
    """Create or migrate the storage of the instance in `home` (default $DAGSTER_HOME); a summary."""
    from dagster import DagsterInstance

    home = _home(home)
    url = postgres_url(_config(home))
    lock = _advisory_lock(url) if url else _flock(home)
    with lock, DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade(print_fn=lambda _: None)
    where = f"PostgreSQL {redact_url(url)}" if url else f"SQLite under {home}"
    return f"Dagster instance storage ready: {where}"


def postgres_url(config: Mapping[str, Any]) -> str | None:
    """The instance's PostgreSQL URL (`postgres_url` or `postgres_db`, `env:` resolved), if any."""
    from dagster_postgres.utils import pg_url_from_config

    for section in _mappings(config):
        if "postgres_url" in section or "postgres_db" in section:
            return pg_url_from_config(_resolve_env(section))
    return None


def _home(home: Path | None) -> Path:
    if home is None:
        value = os.environ.get("DAGSTER_HOME")
        if not value:
            raise InstancePrepareError(
                "DAGSTER_HOME is not set: set it to the folder holding the instance's dagster.yaml"
            )
        home = Path(value)
    if not (home / "dagster.yaml").is_file():
        raise InstancePrepareError(f"{home}/dagster.yaml does not exist: DAGSTER_HOME must hold it")
    return home


def _config(home: Path) -> Mapping[str, Any]:
    try:
        return yaml.safe_load((home / "dagster.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InstancePrepareError(f"{home}/dagster.yaml is not valid YAML{where}") from None


def _mappings(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every mapping in a parsed YAML tree, outermost first."""
    if isinstance(value, Mapping):
        yield value
        for child in value.values():
            yield from _mappings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _mappings(child)


def _resolve_env(value: Any) -> Any:
    """Dagster's `{env: NAME}` values replaced by the variable's value."""
    if isinstance(value, Mapping):
        if set(value) == {"env"}:
            name = value["env"]
            if name not in os.environ:
                raise InstancePrepareError(
                    f"the instance's dagster.yaml reads {name}, which is not set: export it"
                )
            return os.environ[name]
        return {k: _resolve_env(v) for k, v in value.items()}
    return value


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SET lock_timeout = '{_WAIT_S}s'"))
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
    except sa.exc.OperationalError as exc:
        text = str(exc.orig or exc).strip().splitlines()[0]
        cause = Redactor(SecretUrl(url).passwords_and_pieces()).text(text)
        raise InstancePrepareError(
            f"cannot reach the instance's PostgreSQL ({cause}): check DAGSTER_PG_URL"
        ) from None
    finally:
        engine.dispose()


def _flock(home: Path):
    busy = InstancePrepareError(f"another process has been preparing {home} for {_WAIT_S} s")
    return file_lock(home / ".segment-sync-instance.lock", _WAIT_S, busy)
