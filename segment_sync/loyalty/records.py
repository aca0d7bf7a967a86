"""Rows of the loyalty store, as plain values (no database, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

ORIGIN_SEGMENT = "segment"  # registered through the inbound path: never echoed back to Segment
ORIGIN_LOYALTY = "loyalty"


class Stream(StrEnum):
    """An outbound stream: one source table, one Segment call type."""

    EVENTS = "events"
    PROFILES = "profiles"


@dataclass(slots=True)  # not frozen: built once per row on the hot path, frozen costs ~3x
class LoyaltyEvent:
    id: int
    customer_id: str
    external_customer_id: str | None
    action: str
    data: dict[str, Any]
    occurred_at: datetime
    origin: str = ORIGIN_LOYALTY
    # Read from the store: `data` as the JSON text stored, which is what is sent (as the
    # columnar builder sends it), so every builder sends the same bytes.
    data_json: str | bytes | None = None


@dataclass(slots=True)
class ProfileChange:
    id: int
    customer_id: str
    external_customer_id: str | None
    attributes: dict[str, Any]
    occurred_at: datetime
    origin: str = ORIGIN_LOYALTY


@dataclass(slots=True)
class BadRow:
    """A stored row that could not be read as a record: sent as nothing, logged as failed."""

    id: int
    table: str
    column: str
    problem: str
    customer_id: str | None = None

    @property
    def reason(self) -> str:
        return f"{self.table} id {self.id}: column {self.column} {self.problem}; fix the row, then replay"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append to the store (demo seeding, the Antavo stand-in)."""

    customer_id: str
    action: str
    data: dict[str, Any] = field(default_factory=dict)
    external_customer_id: str | None = None
    occurred_at: datetime | None = None
    origin: str = ORIGIN_LOYALTY


@dataclass(frozen=True, slots=True)
class NewProfileChange:
    customer_id: str
    attributes: dict[str, Any]
    external_customer_id: str | None = None
    occurred_at: datetime | None = None
    origin: str = ORIGIN_LOYALTY
