"""Messages as Arrow columns: what the batcher, the sender and the message log read (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segment_sync.segment.messages import Message

BATCH_PREFIX = b'{"batch":['
_SENT_AT = b'],"sentAt":"'


@dataclass(frozen=True, slots=True)
class MessageColumns:
    """Messages in order, one Arrow array per field.

    `bodies` holds each message's JSON followed by one comma, so the messages of a request are
    one contiguous slice of its data buffer: a request body is built without a copy per message.
    """

    event_type: str  # track | identify: one stream, one call type
    message_id: pa.Array
    source_id: pa.Array
    customer_id: pa.Array  # the Segment userId
    event_name: pa.Array
    bodies: pa.LargeBinaryArray
    occurred_ms: pa.Array  # each event's time, ms since the epoch (for delivery latency)

    def __len__(self) -> int:
        return len(self.bodies)

    def _offsets(self) -> np.ndarray:
        """Where each body starts in the data buffer, and where the last one ends."""
        bodies = self.bodies
        offsets = np.frombuffer(bodies.buffers()[1], dtype=np.int64)
        return offsets[bodies.offset : bodies.offset + len(bodies) + 1]

    @property
    def sizes(self) -> np.ndarray:
        """Each message's JSON size in bytes (its comma not counted)."""
        return np.diff(self._offsets()) - 1

    def slice(self, start: int, stop: int) -> MessageColumns:
        n = stop - start
        return MessageColumns(
            self.event_type,
            self.message_id.slice(start, n),
            self.source_id.slice(start, n),
            self.customer_id.slice(start, n),
            self.event_name.slice(start, n),
            self.bodies.slice(start, n),
            self.occurred_ms.slice(start, n),
        )

    def request_body(self, sent_at: str) -> bytes:
        """The /v1/batch JSON body carrying these messages."""
        if not len(self):
            return BATCH_PREFIX + _SENT_AT + sent_at.encode() + b'"}'
        offsets = self._offsets()
        first, last = int(offsets[0]), int(offsets[-1])
        joined = memoryview(self.bodies.buffers()[2])[first : last - 1]  # minus the last comma
        return b"".join((BATCH_PREFIX, joined, _SENT_AT, sent_at.encode(), b'"}'))

    def customers(self) -> pa.Array:
        """The distinct userIds, in order of first appearance (as Arrow: a log row keeps them
        so, and thousands of Python strings per request cost a tenth of its log row)."""
        return pc.unique(self.customer_id)

    @classmethod
    def from_messages(cls, event_type: str, messages: Sequence[Message]) -> MessageColumns:
        return cls(
            event_type,
            pa.array([m.message_id for m in messages], pa.string()),
            pa.array([m.source_id for m in messages], pa.int64()),
            pa.array([m.customer_id for m in messages], pa.string()),
            pa.array([m.event_name for m in messages], pa.string()),
            pa.array([m.body + b"," for m in messages], pa.large_binary()),
            pa.array([m.occurred_ms for m in messages], pa.int64()),
        )
