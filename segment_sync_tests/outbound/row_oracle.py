"""Whether a stored loyalty row is a good Track call, decided from Segment's rules on the stored
values (never by the code under test): shared by the outbound and whole-pipeline property tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from segment_sync.segment.messages import CONTEXT, iso_timestamp, message_id
from segment_sync_tests.outbound.raw_rows import Blob

SEGMENT_MAX_MESSAGE_BYTES = 32_768  # Segment's documented per-message limit, on the bytes sent

# The columns a generated row leaves out: a plain good row.
PLAIN_ROW = {
    "customer_id": "c-plain",
    "external_customer_id": None,
    "action": "point_add",
    "data": '{"points": 5}',
    "occurred_at": "2026-11-28 17:52:06.123456",
}


def is_good(columns: dict[str, object], id_: int) -> bool:
    """Would Segment take this stored row (PLAIN_ROW overridden by `columns`) as a Track call?"""
    values = {**PLAIN_ROW, **columns}
    try:
        text = {k: _text(v) for k, v in values.items()}
        when = datetime.strptime(text["occurred_at"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        if not text["customer_id"] or type(orjson.loads(text["data"])) is not dict:
            return False
        wire = orjson.dumps(
            {
                "type": "track",
                "event": text["action"],
                "userId": text["customer_id"],
                "properties": orjson.Fragment(text["data"]),
                "timestamp": iso_timestamp(when),
                "messageId": message_id("evt", id_, when),
                "context": CONTEXT,
            }
        )
        again = orjson.dumps(orjson.loads(wire))  # how Segment (the stand-in) reads it
    except (UnicodeDecodeError, ValueError, TypeError):  # orjson's errors are both
        return False
    return max(len(wire), len(again)) <= SEGMENT_MAX_MESSAGE_BYTES


def _text(value: object) -> str | None:
    raw = value.raw if isinstance(value, Blob) else value
    return raw.decode() if isinstance(raw, bytes) else raw
