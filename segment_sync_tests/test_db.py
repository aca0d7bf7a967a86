"""Opening a store: several processes starting on one fresh database at the same moment, and
a `sqlite:///` file that cannot be created, said before SQLite fails."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.db import (
    DatabasePathError,
    create_engine,
    create_tables,
    sqlite_file_problem,
    sqlite_path,
)

PROCESSES = 4
ROUNDS = 12  # before the fix about half the rounds had a failing process


def _metadata(suffix: str) -> sa.MetaData:
    """Three tables, so a loser can find the winner between two CREATE TABLEs."""
    metadata = sa.MetaData()
    for name in ("progress", "lock_waits", "runs"):
        sa.Table(f"{name}_{suffix}", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


def _open(url: str, suffix: str | None, barrier, errors) -> None:
    barrier.wait()
    try:
        engine = create_engine(url, durable=True)
        if suffix is None:  # only the first connection, which switches the file to WAL
            engine.connect().close()
        else:
            create_tables(engine, _metadata(suffix))
        engine.dispose()
    except Exception as exc:  # reported to the test, which names it
        errors.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


def _errors_opening_at_once(url: str, suffix: str | None) -> list[str]:
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(PROCESSES), context.Queue()
    children = [
        context.Process(target=_open, args=(url, suffix, barrier, errors)) for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0] * PROCESSES
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_processes_connecting_to_a_new_sqlite_file_at_once_all_switch_it_to_wal(tmp_path):
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path}/round-{round_}.db"
        assert _errors_opening_at_once(url, None) == []
        with sa.create_engine(url).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_processes_creating_tables_in_a_new_sqlite_file_at_once_all_succeed(tmp_path):
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path}/round-{round_}.db"
        assert _errors_opening_at_once(url, "t") == []
        assert _tables(url) == {"progress_t", "lock_waits_t", "runs_t"}


def test_processes_creating_tables_on_a_new_postgresql_database_at_once_all_succeed(pg_url):
    for round_ in range(ROUNDS):
        assert _errors_opening_at_once(pg_url, f"r{round_}") == []
        assert {f"progress_r{round_}", f"lock_waits_r{round_}", f"runs_r{round_}"} <= _tables(
            pg_url
        )


def test_a_create_table_that_can_never_succeed_still_raises_after_the_retries(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/store.db")
    metadata = sa.MetaData()
    sa.Table("broken", metadata, sa.Column("id", sa.Integer), sa.CheckConstraint("nowhere > 0"))
    with pytest.raises(sa.exc.OperationalError, match="no such column: nowhere"):
        create_tables(engine, metadata)
    engine.dispose()


@st.composite
def layouts(draw) -> tuple[list[str], int | None, int, bool]:
    """Names from a base down to the database file (the last), the level where a file stands
    instead of a folder (if any), how many levels exist already, and a read-only base."""
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "db"]), min_size=1, max_size=4))
    file_at = draw(st.none() | st.integers(0, len(names) - 1))
    existing = draw(st.integers(0, len(names)))
    return names, file_at, existing, draw(st.booleans())


def unguarded_sqlite_works(url: str) -> bool:
    """Whether SQLite itself can create (or open) and write the file of `url`."""
    path = sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE IF NOT EXISTS t (x)")
            con.execute("INSERT INTO t VALUES (1)")
        return True
    except (OSError, sqlite3.Error):
        return False


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts())
def test_the_sqlite_guard_refuses_exactly_the_paths_sqlite_cannot_use(
    tmp_path_factory, read_only_dir, layout
):
    names, file_at, existing, read_only = layout
    base = read_only_dir if read_only else tmp_path_factory.mktemp("db")
    for level in range(0 if read_only else existing):
        target = base.joinpath(*names[: level + 1])
        if level == file_at:
            target.write_text("a file where a folder (or the database) should be")
            break
        if level < len(names) - 1:
            target.mkdir()
    url = f"sqlite:///{base.joinpath(*names)}"

    problem = sqlite_file_problem(url)

    assert (problem is None) == unguarded_sqlite_works(url), (url, problem)
    if problem is not None:
        with pytest.raises(DatabasePathError, match="cannot use the SQLite database"):
            create_engine(url)
