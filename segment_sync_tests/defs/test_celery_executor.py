"""executor.kind: celery: shard runs execute on two real Celery workers (deploy/celery).

The deployment is real: a PostgreSQL-backed Dagster instance (deploy/celery/dagster.yaml), two
workers started by deploy/celery/worker.sh with Redis as broker and result backend, one process
per shard run executing the code location's job, and the Segment stand-in on loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.shards import shard_of
from segment_sync.standins.segment import SegmentStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import REDIS_SERVER, WRITE_KEY, fresh_pg_database, require_redis
from segment_sync_tests.outbound.test_sharded_sync import row_id

REPO = Path(__file__).resolve().parents[2]
SHARDS = 4
EVENTS = 3_000
BROKER_DB, BACKEND_DB = 10, 11  # Redis databases of their own, flushed before the workers start
RUN_TIMEOUT_S = 300


@dataclass
class RunProcess:
    """One `celery_runs` process; its log ends with `run <id> SUCCESS|FAILURE`."""

    proc: subprocess.Popen
    log: Path

    def result(self) -> tuple[int, str]:
        """(exit code, run id) once the process has ended."""
        code = self.proc.wait(RUN_TIMEOUT_S)
        last = self.log.read_text().strip().splitlines()[-1]
        assert last.startswith("run "), f"the run process ended without a run: {last}"
        return code, last.split()[1]


@dataclass
class Deployment:
    env: dict[str, str]
    standin: SegmentStandin
    store: LoyaltyStore
    workers: list[subprocess.Popen]
    logs: Path

    def append(self, n: int) -> list[int]:
        events = [NewEvent(f"c-{i % 97}", "point_add", {"n": i}) for i in range(n)]
        return self.store.append_events(events)

    def start_shard_runs(self) -> dict[int, RunProcess]:
        """One run per shard partition, all at once, as a backfill over the shards launches."""
        return {k: self._run(f"shard-{k}") for k in range(SHARDS)}

    def reexecute_from_failure(self, run_id: str) -> RunProcess:
        return self._run("--from-failure", run_id)

    def _run(self, *args: str) -> RunProcess:
        log = self.logs / f"run-{'-'.join(args)}-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "segment_sync_tests.defs.celery_runs", *args]
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=out, stderr=out)
        return RunProcess(proc, log)

    def tasks_succeeded(self, worker: str) -> int:
        return (self.logs / f"{worker}.log").read_text().count("succeeded in")


def flushed_redis_or_skip() -> None:
    """The broker's and backend's databases, emptied of an earlier run's tasks and results."""
    import redis

    require_redis(REDIS_SERVER)
    for db in (BROKER_DB, BACKEND_DB):
        with redis.Redis.from_url(f"{REDIS_SERVER}/{db}") as client:
            client.flushdb()


def start_worker(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = open(logs / f"{name}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [str(REPO / "deploy" / "celery" / "worker.sh"), name],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so teardown stops the whole tree
    )


def wait_until_ready(workers: list[subprocess.Popen], logs: Path, names: list[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(" ready." in (logs / f"{n}.log").read_text() for n in names):
            return
        dead = [n for n, w in zip(names, workers, strict=True) if w.poll() is not None]
        assert not dead, f"worker(s) {dead} exited: {(logs / f'{dead[0]}.log').read_text()[-2000:]}"
        time.sleep(0.2)
    raise AssertionError("the Celery workers did not report ready within 120 s")


def stop(workers: list[subprocess.Popen]) -> None:
    """SIGTERM every worker's process group, SIGKILL what is left after 20 s; none outlives us."""
    tree = []
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=20)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    for worker in workers:
        worker.wait(10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    flushed_redis_or_skip()
    root = tmp_path_factory.mktemp("celery")
    logs = root / "process-logs"
    logs.mkdir()
    standin = SegmentStandin("us", {WRITE_KEY: "us"})
    standin.set_faults(delay_s=0.05)  # each request takes a while, so the shard runs overlap
    with fresh_pg_database() as pg, serve_in_thread(standin.app) as url:
        standin.url = url
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
        settings = root / "segment_sync.yaml"
        settings.write_text(yaml.safe_dump(_settings(pg, url, root)))
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": pg.replace("postgresql://", "postgresql+psycopg2://", 1),
            "DAGSTER_CELERY_BROKER_URL": f"{REDIS_SERVER}/{BROKER_DB}",
            "DAGSTER_CELERY_BACKEND_URL": f"{REDIS_SERVER}/{BACKEND_DB}",
            "SEGMENT_SYNC_SETTINGS": str(settings),
            "SEGMENT_WRITE_KEY": WRITE_KEY,
        }
        names = ["worker-a", "worker-b"]
        workers = [start_worker(n, env, logs) for n in names]
        try:
            wait_until_ready(workers, logs, names)
            yield Deployment(env, standin, LoyaltyStore(pg), workers, logs)
        finally:
            stop(workers)


def _settings(pg: str, standin_url: str, root: Path) -> dict:
    return {
        "loyalty_store": {"url": pg},
        "outbound": {
            "base_url": standin_url,
            "event_sync": ["point_add"],
            "state_url": pg,
            "shards": SHARDS,
            "chunk_size": 100,  # many chunks per shard: a kill lands mid-run
            "follow_s": 0,
            "backoff_cap_s": 0.2,
        },
        "logs": {"dir": str(root / "logs")},
        "executor": {"kind": "celery"},
    }


def first_arrivals_per_customer(messages: list[dict]) -> dict[str, list[int]]:
    seen: set[int] = set()
    per_customer: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        if row_id(m) not in seen:
            seen.add(row_id(m))
            per_customer[m["userId"]].append(row_id(m))
    return per_customer


def pool_processes(worker: subprocess.Popen) -> list[psutil.Process]:
    """The processes a worker runs steps in: worker.sh (exec) dagster-celery > celery > pool."""
    [celery] = psutil.Process(worker.pid).children()
    return celery.children()


def sending_to(port: int, processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` with a connection open to the stand-in: mid-step, sending a shard."""
    busy = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if any(c.raddr and c.raddr.port == port for c in process.net_connections("tcp")):
                busy.append(process)
    return busy


def wait_for(condition, what: str, timeout_s: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_workers_deliver_every_row_of_four_shards_exactly_once_in_customer_order(deployment):
    deployment.standin.reset()
    ids = deployment.append(EVENTS)
    runs = deployment.start_shard_runs()
    assert [r.result()[0] for r in runs.values()] == [0] * SHARDS
    messages = list(deployment.standin.messages)
    assert sorted(row_id(m) for m in messages) == ids  # each row once: none lost, none twice
    per_customer = defaultdict(list)
    for m in messages:
        per_customer[m["userId"]].append(row_id(m))
    assert all(rows == sorted(rows) for rows in per_customer.values())
    assert all(deployment.tasks_succeeded(w) >= 1 for w in ("worker-a", "worker-b"))


def test_a_worker_killed_mid_run_loses_nothing_once_the_failed_run_is_retried(deployment):
    deployment.standin.reset()
    ids = deployment.append(EVENTS)
    runs = deployment.start_shard_runs()
    port = int(deployment.standin.url.rsplit(":", 1)[1])
    pools = [p for w in deployment.workers for p in pool_processes(w)]
    wait_for(lambda: sending_to(port, pools), "a worker sending a shard")
    victim = sending_to(port, pools)[0]
    victim.send_signal(signal.SIGKILL)  # the worker's process, mid-step, as an OOM kill would
    outcomes = {k: r.result() for k, r in runs.items()}
    failed = [k for k, (code, _) in outcomes.items() if code != 0]
    # The killed step's run fails; so may one more, when the step the worker had already
    # handed to that process (Celery's prefetch) died with it: seen once on a busy machine.
    assert 1 <= len(failed) <= 2, f"the killed worker's run(s) fail, the others not: {outcomes}"
    for killed in failed:
        code, _ = deployment.reexecute_from_failure(outcomes[killed][1]).result()
        assert code == 0
    messages = list(deployment.standin.messages)
    copies = Counter(row_id(m) for m in messages)
    assert sorted(copies) == ids  # nothing lost
    twice = {shard_of(m["userId"], SHARDS) for m in messages if copies[row_id(m)] > 1}
    assert twice <= set(failed)  # only the killed steps' unconfirmed rows are sent again
    per_customer = first_arrivals_per_customer(messages)
    assert all(rows == sorted(rows) for rows in per_customer.values())
