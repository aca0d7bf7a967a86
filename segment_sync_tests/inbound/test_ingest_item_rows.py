"""The inbound_items rows of sent events, queued as lists per column, and the run's top errors."""

from __future__ import annotations

from datetime import UTC, datetime

from segment_sync.antavo.records import EventResult
from segment_sync.inbound.buffer import BufferItem
from segment_sync.inbound.group_commit import Outcomes
from segment_sync.inbound.ingest_log import item_columns, unsent_row
from segment_sync.inbound.ingest_recording import IngestRecording, _Planned
from segment_sync.inbound.ingest_result import IngestResult
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.redaction import REDACTED, Redactor


def planned(item_id: int, *, error: str | None = None) -> _Planned:
    item = BufferItem(
        item_id, f"m-{item_id}", {"type": "track", "userId": "u"}, 0, datetime.now(UTC)
    )
    answer = EventResult(
        0, error is None, None if error else f"ev-{item_id}", error, False, 200, "r1"
    )
    return _Planned(item, "Order", {"action": "checkout", "customer": 7}, answer)


def test_sent_events_rows_and_their_errors_counted_once_each(tmp_path):
    recording = IngestRecording()
    recording.logs = LogWriter(tmp_path)
    recording._stopped = False
    redactor = Redactor(["s3cret"])
    result = IngestResult("run-1", 10)
    sent = item_columns(
        redactor, "run-1", [(planned(1), "done"), (planned(2, error="no s3cret"), "failed")]
    )
    unsent = unsent_row(redactor, planned(3).item, "run-1", None, "error", "bad")
    recording._log_all(
        [Outcomes([], [], [], [], columns=sent), Outcomes([], [], [], [], columns=sent)], result
    )
    assert result.errors == {f"no {REDACTED}": 2}
    assert unsent["error"] == "bad"
    with connect(tmp_path) as con:
        rows = con.execute(
            "SELECT buffer_item_id, message_id, run_id, event_type, mapping_name, outcome,"
            " antavo_action, customer_id, antavo_event_id, error, identifier FROM inbound_items"
        ).fetchall()
    assert rows == 2 * [
        (1, "m-1", "run-1", "track", "Order", "done", "checkout", "7", "ev-1", None, "r1"),
        (2, "m-2", "run-1", "track", "Order", "failed", "checkout", "7", None,
         f"no {REDACTED}", "r1"),
    ]  # fmt: skip
    assert datetime.now(UTC) >= sent["timestamp"][0]
