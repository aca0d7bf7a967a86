"""The manual's customer ID mapping, inbound: with `external_customer_id`, Segment's userId (the
mapped `customer`) is the external ID, resolved to the Antavo customer before registering.

Pure: the lookup (external ID -> customer ID) is handed in; unknown IDs become errors that name
the ID and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from segment_sync.inbound.mapping.antavo_event import MappingOutcome

CustomerLookup = Callable[[Collection[str]], dict[str, str]]


def unknown_external_id(external_id: str) -> str:
    return (
        f"no customer in the loyalty store has external_customer_id {external_id!r} "
        "(general.customer_id_mapping is external_customer_id, so the Segment userId is the "
        "external ID); check the userId or create the customer, then `segment-sync replay inbound`"
    )


def external_ids(outcomes: list[MappingOutcome]) -> set[str]:
    """The external IDs the successful outcomes name as their customer."""
    return {
        str(o.antavo_event["customer"])
        for o in outcomes
        if o.antavo_event is not None and o.error is None and "customer" in o.antavo_event
    }


def to_antavo_customers(
    outcomes: list[MappingOutcome], customers: dict[str, str]
) -> list[MappingOutcome]:
    """Each outcome with its external `customer` replaced by the Antavo customer ID, or failed
    naming the external ID the store does not know."""
    resolved = []
    for outcome in outcomes:
        event = outcome.antavo_event
        if event is None or outcome.error is not None or "customer" not in event:
            resolved.append(outcome)
            continue
        external = str(event["customer"])
        if external in customers:
            event = {**event, "customer": customers[external]}
            resolved.append(replace(outcome, antavo_event=event))
        else:
            resolved.append(replace(outcome, error=unknown_external_id(external)))
    return resolved
