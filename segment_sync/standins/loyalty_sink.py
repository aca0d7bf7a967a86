"""Lets the Antavo stand-in register events in the loyalty store, as the real Antavo would."""

from __future__ import annotations

from segment_sync.loyalty.records import ORIGIN_SEGMENT, NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore

PROFILE_ACTION = "profile"


class LoyaltySink:
    """`on_event` for AntavoStandin: events land with origin `segment` (so never echoed back)."""

    def __init__(self, store: LoyaltyStore) -> None:
        self.store = store

    def __call__(self, event: dict, event_id: str) -> None:
        customer = str(event.get("customer", ""))
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if event.get("action") == PROFILE_ACTION:
            self.store.append_profile_changes(
                [NewProfileChange(customer, data, origin=ORIGIN_SEGMENT)]
            )
        else:
            self.store.append_events(
                [NewEvent(customer, str(event.get("action")), data, origin=ORIGIN_SEGMENT)]
            )
