"""The invariants of the whole-pipeline property test, checked on what the real parts kept:
the stand-ins' records, the buffer, the Parquet logs and each run's exit code and output."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.logs.views import connect
from segment_sync.standins.segment_faults import REFUSED_TEXT

SEGMENT_MAX_MESSAGE_BYTES = 32_768  # Segment: "32 KB per message"
SEGMENT_MAX_BATCH_BYTES = 500_000  # Segment: "500 KB per batch request"
ANTAVO_BULK_EVENTS = 50
_RUN_LINE = re.compile(r"^run (\S+) (succeeded|FAILED)", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    """A finished `segment-sync run` process."""

    direction: str
    code: int
    output: str

    @property
    def run_id(self) -> str | None:
        found = _RUN_LINE.findall(self.output)
        return found[-1][0] if found else None


@dataclass
class Stop:
    """What was delivered when a run was stopped (killed, or its log disk full)."""

    accepted: Counter = field(default_factory=Counter)  # Segment: source id -> times
    watermark: int = 0  # the outbound progress saved when it stopped
    registered: Counter = field(default_factory=Counter)  # Antavo: messageId -> times


def source_id(message_id: str) -> int:
    """The loyalty row id inside a messageId (`ss-evt-<id>-<hash>`)."""
    return int(message_id.split("-")[2])


def check_outputs(runs: list[Run], stopped: str) -> None:
    """No traceback anywhere; exit codes as documented: 0, 1 when anything failed, -9 killed."""
    for run in runs:
        assert "Traceback" not in run.output, run.output
    finals = runs if stopped == "none" else runs[2:]
    for run in finals:
        assert run.code in (0, 1) and run.run_id, run.output
    for run in runs[:2] if stopped != "none" else []:
        if stopped == "full_disk":
            assert run.code == 1 and "No space left on device" in run.output, run.output
            assert "logs.dir (" in run.output, run.output
        else:
            assert run.code in (-9, 0, 1), run.output


def _rows(logs_dir: Path, sql: str) -> list[tuple]:
    with connect(logs_dir) as con:
        return con.execute(sql).fetchall()


def check_run_records(logs_dir: Path, runs: list[Run]) -> None:
    """Every run that finished has a sync_runs row saying what its exit code says."""
    statuses = dict(_rows(logs_dir, "SELECT run_id, status FROM sync_runs"))
    for run in runs:
        if run.code in (0, 1) and run.run_id:
            assert statuses.get(run.run_id) == ("success" if run.code == 0 else "failure"), run
            has_failed = _rows(
                logs_dir,
                f"SELECT count(*) FROM {'outbound_messages' if run.direction == 'outbound' else 'inbound_items'} "
                f"WHERE run_id = '{run.run_id}' AND outcome IN ('failed', 'pending', 'retry')",
            )[0][0]
            assert (run.code == 1) == bool(has_failed), run.output


def check_outbound(
    segment, logs_dir: Path, good: set[int], bad: set[int], refused: set[int], stop: Stop | None
) -> None:
    accepted = Counter(source_id(m["messageId"]) for m in segment.messages)
    assert set(accepted) == good, (sorted(set(accepted) - good), sorted(good - set(accepted)))
    twice = {i for i, n in accepted.items() if n > 1}
    if stop is None:
        assert not twice, sorted(twice)
    else:  # only what the stopped run sent past its saved progress, once more at most
        assert twice <= {i for i in stop.accepted if i > stop.watermark}, sorted(twice)
        assert max(accepted.values(), default=1) <= 2
    assert segment.dropped()["messages"] == 0  # nothing Segment would drop while answering 200
    for message in segment.messages:
        assert len(orjson.dumps(message)) <= SEGMENT_MAX_MESSAGE_BYTES
    for request in segment.request_records():
        assert (request.get("json_bytes") or 0) <= SEGMENT_MAX_BATCH_BYTES, request
        if request["status"] == 400:  # only the injected refusal: never oversize or bad JSON
            assert request["error"] == REFUSED_TEXT, request

    rows = _rows(logs_dir, "SELECT run_id, source_id, outcome, error FROM outbound_messages")
    failed = [(run, sid, error) for run, sid, outcome, error in rows if outcome == "failed"]
    assert len(failed) == len({(run, sid) for run, sid, _ in failed})  # once per run at most
    reasons: dict[int, list[str]] = {}
    for _, sid, error in failed:
        reasons.setdefault(sid, []).append(error or "")
    assert set(reasons) == bad | refused, (
        sorted(set(reasons) - bad - refused),
        sorted(bad | refused - set(reasons)),
    )
    for sid in bad:
        assert any(e.startswith(f"loyalty_events id {sid}: ") for e in reasons[sid]), reasons[sid]
    for sid in refused:
        assert any("HTTP 400" in e and "message_refused" in e for e in reasons[sid]), reasons[sid]
    latest = {sid: outcome for _, sid, outcome, _ in rows}  # in log order
    assert {sid for sid in good if latest.get(sid) != "delivered"} == set()


def check_inbound(
    antavo,
    logs_dir: Path,
    buffer_url: str,
    prefix: str,
    good: set[str],
    bad: set[str],
    unmatched: set[str],
    in_flight: int,
    stop: Stop | None,
) -> None:
    registered = Counter(e["data"].get("mid") for e in antavo.events)  # reset for each case
    assert set(registered) == good, (sorted(set(registered) - good), sorted(good - set(registered)))
    repeats = sum(registered.values()) - len(registered)
    if stop is None:
        assert repeats == 0, registered.most_common(3)
    else:  # at most the requests in flight when it stopped
        assert {m for m, n in registered.items() if n > 1} <= set(stop.registered)
        assert repeats <= in_flight * ANTAVO_BULK_EVENTS

    buffer = InboundBuffer(buffer_url)
    try:
        records = {
            r.message_id: r
            for r in buffer.items(limit=100_000)
            if r.message_id.startswith(f"{prefix}-")
        }
    finally:
        buffer.close()
    assert set(records) == good | bad | unmatched  # nothing the receiver refused was stored
    for mid, record in records.items():
        if mid in bad:
            assert record.status == "failed" and record.attempts >= 1 and record.last_error, record
        else:
            assert record.status == "done", record

    rows = _rows(logs_dir, "SELECT run_id, message_id, outcome, error FROM inbound_items")
    failed = {mid for _, mid, outcome, error in rows if outcome == "failed" and error}
    assert failed == bad, (sorted(failed - bad), sorted(bad - failed))
    assert {mid for _, mid, outcome, _ in rows if outcome == "no_match"} == unmatched
