"""The manual's customer ID mapping, inbound: with `external_customer_id`, Segment's userId (the
mapped `customer`) is the external ID, resolved to the Antavo customer before registering.

Pure: the lookup (external ID -> customer ID) is handed in; unknown IDs become errors that name
the ID and the fix. An ID the store cannot even look up (a NUL character on PostgreSQL, a lone
surrogate) fails its own items alone: the lookup falls back to halves until it finds it.
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


def unreadable_external_id(external_id: str, exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    # The DBAPI's own message, first line: SQLAlchemy's text adds the SQL and its parameters.
    cause = (str(orig).strip().splitlines() or [""])[0][:200]
    return (
        f"the loyalty store cannot look up external_customer_id {external_id!r} "
        f"({type(orig).__name__}: {cause}); the Segment userId is not a usable external ID: "
        "fix the userId at the source, then `segment-sync replay inbound`"
    )


def is_id_fault(exc: BaseException) -> bool:
    """True when a lookup failed because of the IDs it was given, not the store: a ValueError,
    or a DB-API DataError, whether SQLAlchemy wraps it or the driver raises its own (psycopg's,
    sqlite3's: the lookup reads through either)."""
    return isinstance(exc, ValueError) or any(
        kind.__name__ == "DataError" for kind in type(exc).__mro__
    )


def resolve_customers(
    lookup: CustomerLookup, wanted: Collection[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(customer ID per known external ID, reason per external ID the store cannot look up).

    All IDs in one lookup; when the IDs are at fault, the halves are looked up again (a few
    lookups per bad ID). Any other error (the store is down) is raised: that is the run's fault.
    """
    known: dict[str, str] = {}
    refused: dict[str, str] = {}
    todo = [sorted(set(wanted))]
    while todo:
        ids = todo.pop()
        try:
            known.update(lookup(ids))
        except Exception as exc:
            if not is_id_fault(exc):
                raise
            if len(ids) == 1:
                refused[ids[0]] = unreadable_external_id(ids[0], exc)
            else:
                todo += [ids[: len(ids) // 2], ids[len(ids) // 2 :]]
    return known, refused


def external_ids(outcomes: list[MappingOutcome]) -> set[str]:
    """The external IDs the successful outcomes name as their customer."""
    return {
        str(o.antavo_event["customer"])
        for o in outcomes
        if o.antavo_event is not None and o.error is None and "customer" in o.antavo_event
    }


def to_antavo_customers(
    outcomes: list[MappingOutcome],
    customers: dict[str, str],
    refused: dict[str, str] | None = None,
) -> list[MappingOutcome]:
    """Each outcome with its external `customer` replaced by the Antavo customer ID, or failed
    naming the external ID the store does not know (or the reason it could not look it up)."""
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
            error = (refused or {}).get(external) or unknown_external_id(external)
            resolved.append(replace(outcome, error=error))
    return resolved
