"""Faults the Segment stand-in injects: failing requests, throttling, and refusing marked messages.

Real Segment answers 400 only for a request it cannot take as a whole: a body over 500,000
bytes or one that is not valid JSON. A message it finds invalid it drops, answering 200. The
`refuse_marker` and `refuse_message_ids` faults model a 400 caused by one message of a batch
(a Segment-side validation, a proxy or WAF in front of it), so the client's narrowing of a
refused batch down to that message can be tested: a request carrying such a message is answered
400, whatever else it carries, every time it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

REFUSED_CODE = "message_refused"
REFUSED_TEXT = "the batch carries a message this stand-in is set to refuse (injected fault)"


@dataclass
class SegmentFaults:
    """Faults the stand-in injects before (or, for refused messages, while) it processes a
    `/v1/*` request."""

    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: float = 0.05
    outage_requests: int = 0
    reject_requests: int = 0  # the next N requests are answered 400 (as Segment does a bad batch)
    outage_until: float = 0.0
    delay_s: float = 0.0
    seed: int | None = None
    # A request with a message whose `properties` or `traits` has this key is answered 400.
    refuse_marker: str = ""
    # A request with a message whose messageId is one of these is answered 400.
    refuse_message_ids: list[str] = field(default_factory=list)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set the named fields, coercing numbers; raises ValueError on unknown names or values."""
        types = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(changes) - set(types))
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        for name, value in changes.items():
            setattr(self, name, _coerce_fault(name, value))

    def refused_index(self, messages: list) -> int | None:
        """The index of the first message this stand-in is set to refuse, None if none."""
        marker, ids = self.refuse_marker, self.refuse_message_ids
        if not marker and not ids:
            return None
        wanted = set(ids)
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            if message.get("messageId") in wanted:
                return index
            if marker and any(
                isinstance(message.get(part), dict) and marker in message[part]
                for part in ("properties", "traits")
            ):
                return index
        return None


def _coerce_fault(name: str, value: Any) -> Any:
    """A fault field value of the right type, or ValueError."""
    if name == "seed":
        return None if value is None else int(value)
    if name == "refuse_marker":
        if not isinstance(value, str):
            raise ValueError("fault field refuse_marker needs a string (empty: off)")
        return value
    if name == "refuse_message_ids":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("fault field refuse_message_ids needs a list of messageIds")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"fault field {name} needs a number")
    number = int(value) if name in ("outage_requests", "reject_requests") else float(value)
    if number < 0 or (name.endswith("_rate") and number > 1):
        raise ValueError(f"fault field {name} is out of range")
    return number
