"""Run tags the code location sets and reads, and the run record every op keeps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import dagster as dg

from segment_sync.logs.store import LogWriter
from segment_sync.redaction import Redactor
from segment_sync.runs import RunRecord, recorded_run

TRIGGER_TAG = "segment_sync/trigger"
STREAM_TAG = "segment_sync/stream"


def run_trigger(tags: Mapping[str, str]) -> str:
    """sensor | schedule | manual, from a run's tags."""
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/schedule_name" in tags:
        return "schedule"
    return "manual"


@contextmanager
def op_run_record(
    context: dg.OpExecutionContext, logs: LogWriter, secrets: Iterable[str]
) -> Iterator[tuple[RunRecord, Redactor]]:
    """The op's `sync_runs` row (written on the way out, whatever happens) and its redactor."""
    redactor = Redactor(secrets)
    record = RunRecord(context.run_id, context.job_name, run_trigger(context.run.tags))
    with recorded_run(logs, record, redactor):
        yield record, redactor
