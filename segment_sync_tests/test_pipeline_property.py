"""Property: over the whole pipeline, both directions, whatever the rows, events and faults,
every good item is delivered once (or, after a kill or a full log disk, repeated only within
what was in flight), every bad item fails alone with a reason naming it, no run ends in a
traceback, and no secret shows in any output or file.

Per example, in one batch: generated loyalty rows written raw through sqlite3 (invalid UTF-8,
deep nesting, `1e5`/`-0`/`1e309`/beyond-64-bit numbers, control and edge Unicode characters,
sizes around Segment's 32,768 bytes and batches past its 500,000); generated webhook events,
good and bad, signed and sent to the real receiver process; a fault plan (5xx and 429 storms
on both stand-ins, a 400 for marked messages, and a SIGKILL of both runs mid-run or a full log
disk, each followed by a rerun). The runs are `segment-sync run outbound` and `run inbound`
processes against the Segment and Antavo stand-ins over loopback.

CI tries two named cases (a kill and a full disk, with storms and refusals, among the members
of the class issue 24 named) and EXAMPLES generated ones (derandomized: the same ones each run);
set SEGMENT_SYNC_PIPELINE_EXAMPLES to try more.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, example, given, settings

from segment_sync import factory
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore, loyalty_events
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.disks import fill_disk
from segment_sync_tests.inbound.test_ingest_property import MAPPING
from segment_sync_tests.outbound.raw_rows import insert_raw
from segment_sync_tests.outbound.row_oracle import PLAIN_ROW, is_good
from segment_sync_tests.pipeline_cases import (
    MARKED,
    MARKER,
    NAMED_FULL_DISK,
    NAMED_KILL,
    Faults,
    Planned,
    Webhook,
    batch_sizes,
    faults,
    planned_events,
    store_rows,
    webhooks,
)
from segment_sync_tests.pipeline_checks import (
    Run,
    Stop,
    check_inbound,
    check_outbound,
    check_outputs,
    check_run_records,
    source_id,
)
from segment_sync_tests.pipeline_world import (
    WEBHOOK_TOKEN,
    World,
    leaked_secrets,
    pipeline_world,
    start_run,
    with_password,
)

EXAMPLES = int(os.environ.get("SEGMENT_SYNC_PIPELINE_EXAMPLES", "8"))
# An example costs seconds, so a failure is reported as found, not shrunk (minutes in CI);
# SEGMENT_SYNC_PIPELINE_SHRINK=1 shrinks it when reproducing.
PHASES = [Phase.explicit, Phase.generate]
if os.environ.get("SEGMENT_SYNC_PIPELINE_SHRINK") == "1":
    PHASES.append(Phase.shrink)
KILL_PADDING_ROWS = 250  # three 100-row chunks, so a kill lands mid-run
KILL_PADDING_EVENTS = 60
_cases = itertools.count()
TALLY: Counter[str] = Counter()  # what the module's cases tried, printed at its end (pytest -s)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    with pipeline_world(tmp_path_factory.mktemp("pipeline")) as built:
        yield built
    print("\npipeline property cases:", ", ".join(f"{k} {n}" for k, n in sorted(TALLY.items())))


def write_settings(world: World, folder: Path, logs_dir: Path, f: Faults) -> Path:
    data = {
        "loyalty_store": {"url": f"sqlite:///{folder / 'loyalty.db'}"},
        "outbound": {
            "base_url": with_password(world.segment_url),
            "state_url": f"sqlite:///{folder / 'state.db'}",
            "event_sync": ["point_add"],
            "chunk_size": 100,
            "max_in_flight": f.out_in_flight,
            "max_retries": 12,
            "backoff_cap_s": 0.05,
            "follow_s": 0,
        },
        "inbound": {
            "base_url": with_password(world.antavo_url),
            "buffer_url": world.buffer_url,
            "mappings": [MAPPING],
            "chunk_size": f.in_chunk,
            "max_in_flight": f.in_in_flight,
            "max_retries": 12,
            "lease_s": 1,
        },
        "alerts": {"ui_base_url": with_password("http://dagster.example:3000")},
        "logs": {"dir": str(logs_dir)},
    }
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def store(settings: Path, rows: list[dict]) -> tuple[set[int], set[int], set[int]]:
    """Write the rows raw (bytes as TEXT through sqlite3); (good, bad, marked) row ids."""
    loyalty = LoyaltyStore(load_settings(settings).loyalty_store.url)
    good, bad, marked = set(), set(), set()
    for columns in rows:
        id_ = insert_raw(loyalty, loyalty_events, **{**PLAIN_ROW, **columns})
        if columns is MARKED:
            marked.add(id_)
        else:
            (good if is_good(columns, id_) else bad).add(id_)
    loyalty.engine.dispose()
    return good, bad, marked


def send(world: World, requests: list[Webhook]) -> None:
    """Each request, signed, to the receiver process: refused ones get a one-line 400 naming why."""
    with httpx.Client(base_url=world.receiver_url, timeout=60) as client:
        for request in requests:
            answer = client.post(
                "/segment",
                content=request.body,
                headers={
                    "Content-Type": "application/json",
                    "X-Signature": request.signature,
                    "Authorization": f"Bearer {WEBHOOK_TOKEN}",
                },
            )
            if request.refusal is None:
                assert answer.status_code == 200, (answer.text, request.body[:300])
                continue
            assert answer.status_code == 400, (answer.text, request.body[:300])
            error = answer.json()["error"]
            assert request.refusal in error and "\n" not in error, (error, request.body[:300])


def run_both(world: World, settings: Path, kill_at: int = 0) -> list[Run]:
    """`run outbound` and `run inbound` at once; with `kill_at`, each is SIGKILLed while its
    stand-in answers its kill_at-th request."""
    outbound = start_run(settings, "outbound")
    world.segment_kill.arm(outbound if kill_at else None, kill_at)
    inbound = start_run(settings, "inbound")
    world.antavo_kill.arm(inbound if kill_at else None, kill_at)
    runs = []
    for direction, proc in (("outbound", outbound), ("inbound", inbound)):
        output, _ = proc.communicate(timeout=300)
        runs.append(Run(direction, proc.returncode, output))
    if kill_at:
        TALLY["outbound runs killed"] += world.segment_kill.fired
        TALLY["inbound runs killed"] += world.antavo_kill.fired
    world.segment_kill.arm(None, 0)
    world.antavo_kill.arm(None, 0)
    return runs


def stop_and_rerun(
    world: World, settings: Path, logs_dir: Path, f: Faults
) -> tuple[list[Run], Stop | None]:
    """Both runs; with a stop (a SIGKILL mid-run, a full log disk), both again once it is over.
    The Stop holds what was delivered and the progress saved when they stopped."""
    filler = None
    if f.stop == "full_disk":
        LogWriter(logs_dir)  # the layout exists; then the disk fills
        filler = fill_disk(world.disk)
    try:
        runs = run_both(world, settings, kill_at=f.kill_at if f.stop == "kill" else 0)
    finally:
        if filler is not None:
            filler.unlink()
    if f.stop == "none":
        return runs, None
    state = factory.outbound_state(load_settings(settings), WRITE_KEY)
    stop = Stop(
        Counter(source_id(m["messageId"]) for m in world.segment.messages),
        state.watermark(Stream.EVENTS) or 0,
        Counter(e["data"]["mid"] for e in world.antavo.events),
    )
    return runs + run_both(world, settings), stop


def inject(world: World, f: Faults) -> None:
    if f.storm:
        world.segment.set_faults(error_rate=0.2, throttle_rate=0.1, retry_after_s=0.01)
        world.antavo.configure(error_rate=0.2, fail_next=[429, 503], retry_after_s=0.05)
    if f.refuse:
        world.segment.set_faults(refuse_marker=MARKER)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # 40 KB paddings
@settings(
    max_examples=EXAMPLES,
    # The same cases on every CI run; SEGMENT_SYNC_PIPELINE_RANDOM=1 explores new ones.
    derandomize=os.environ.get("SEGMENT_SYNC_PIPELINE_RANDOM") != "1",
    phases=PHASES,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(**NAMED_KILL)
@example(**NAMED_FULL_DISK)
@given(rows=store_rows(), events=planned_events, sizes=batch_sizes, f=faults)
def test_every_good_item_is_delivered_once_every_bad_one_fails_alone_and_no_secret_shows(
    world: World, rows: list[dict], events: list[Planned], sizes: list[int], f: Faults
):
    assume(f.stop != "full_disk" or world.disk is not None)
    world.reset()
    case = next(_cases)
    folder = world.root / f"case-{case}"
    folder.mkdir()
    prefix = f"c{case}"
    logs_dir = (world.disk if f.stop == "full_disk" else folder) / f"logs-{case}"
    settings = write_settings(world, folder, logs_dir, f)

    middle = len(rows) // 2
    rows = [*rows[:middle], *[MARKED] * f.refuse, *rows[middle:]]
    if f.stop == "kill":
        rows += [{}] * KILL_PADDING_ROWS
        events = [*events, *[Planned("good", ("c-pad", 1, ""))] * KILL_PADDING_EVENTS]
    good_rows, bad_rows, marked = store(settings, rows)
    requests = webhooks(events, sizes, prefix)
    send(world, requests)
    inject(world, f)

    runs, stop = stop_and_rerun(world, settings, logs_dir, f)

    TALLY.update(
        {
            "cases": 1,
            f"stop {f.stop}": 1,
            "storms": f.storm,
            "rows good": len(good_rows),
            "rows bad": len(bad_rows),
            "rows refused by Segment": len(marked),
            "events good": sum(len(r.good) for r in requests),
            "events bad": sum(len(r.bad) for r in requests),
            "events unmatched": sum(len(r.unmatched) for r in requests),
            "events refused by the receiver": sum(r.refusal is not None for r in requests),
            "runs": len(runs),
        }
    )
    try:
        check_outputs(runs, f.stop)
        check_outbound(world.segment, logs_dir, good_rows, bad_rows, marked, stop)
        check_inbound(
            world.antavo,
            logs_dir,
            world.buffer_url,
            prefix,
            good={m for r in requests for m in r.good},
            bad={m for r in requests for m in r.bad},
            unmatched={m for r in requests for m in r.unmatched},
            in_flight=f.in_in_flight,
            stop=stop,
        )
        check_run_records(logs_dir, runs if f.stop == "none" else runs[2:])  # stopped: no row
        receiver_log = world.receiver_log.read_text(errors="replace")
        assert "Traceback" not in receiver_log, receiver_log[-3000:]
        texts = {f"{r.direction} run {n}": r.output for n, r in enumerate(runs)}
        places = [
            folder,
            logs_dir,
            world.receiver_log,
            Path(world.buffer_url.removeprefix("sqlite:///")),
        ]
        assert leaked_secrets({**texts, "receiver log": receiver_log}, places) == []
    finally:
        if f.stop == "full_disk":  # the next full-disk case needs the room
            shutil.rmtree(logs_dir, ignore_errors=True)
