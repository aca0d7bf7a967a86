"""The log writer masks every text column it writes, whatever built the row."""

from __future__ import annotations

import pyarrow as pa

from segment_sync.logs.redacted_columns import redacted_table
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.redaction import REDACTED, Redactor
from segment_sync_tests.logs.test_log_store import T0, inbound_request, outbound_request

SECRET = 'K3y"sec\\ret'


def test_every_text_column_of_every_table_is_written_masked(tmp_path):
    """Rows and columns alike, list items too; a secret added by a run's redactor as well."""
    logs = LogWriter(tmp_path, redactor=Redactor(["settings-secret"]))
    logs.redact_with(Redactor([SECRET]))
    logs.extend(
        "outbound_log",
        [outbound_request(customer_id=f"c-{SECRET}", customer_ids=["c1", f"c-{SECRET}"])],
    )
    logs.extend_columns(
        "outbound_messages",
        {
            "timestamp": [T0, T0],
            "message_id": ["m-1", "m-settings-secret"],
            "customer_id": ["c1", None],
            "event_name": [f"e-{SECRET}", "plain"],
            "outcome": ["failed", "failed"],
            "error": ['bad "K3y\\"sec\\\\ret"', "via http://u:pw99@host/x"],
        },
    )
    logs.extend("inbound_log", [inbound_request(message_id=f"m-{SECRET}", event_type=SECRET)])
    logs.extend("inbound_items", [{"timestamp": T0, "outcome": "done", "message_id": SECRET}])
    logs.flush()
    db = connect(tmp_path)
    assert db.execute("SELECT customer_id, customer_ids FROM outbound_log").fetchall() == [
        (f"c-{REDACTED}", ["c1", f"c-{REDACTED}"])
    ]
    assert db.execute(
        "SELECT message_id, event_name, error FROM outbound_messages ORDER BY 1"
    ).fetchall() == [
        ("m-1", f"e-{REDACTED}", f'bad "{REDACTED}"'),
        (f"m-{REDACTED}", "plain", f"via http://u:{REDACTED}@host/x"),
    ]
    assert db.execute("SELECT message_id, event_type FROM inbound_log").fetchall() == [
        (f"m-{REDACTED}", REDACTED)
    ]
    assert db.execute("SELECT message_id FROM inbound_items").fetchall() == [(REDACTED,)]


def test_clean_columns_are_kept_as_they_are_and_a_slice_is_judged_by_its_own_values():
    data = pa.table({"customer_id": pa.array([SECRET, "c1", "c2"])}).slice(1)
    clean = redacted_table("inbound_log", data, [Redactor([SECRET])])
    assert clean is data  # no per-value pass over a clean column


def test_the_outbound_request_body_is_left_to_its_builder():
    """Up to 500 KB, redacted by the sync's redactor where it is built (request_row)."""
    data = pa.table({"request_body": [SECRET], "response_body": [SECRET]})
    done = redacted_table("outbound_log", data, [Redactor([SECRET])])
    assert done.to_pylist() == [{"request_body": SECRET, "response_body": REDACTED}]
