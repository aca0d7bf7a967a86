"""Realistic synthetic loyalty data for the demo, tests and benchmarks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore

ACTIONS = ("point_add", "checkout", "purchase", "reward_claim", "opt_in", "coupon_redeem")
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "birth_date",
    "gender",
    "language",
    "phone",
    "tier",
    "score",
)
_FIRST = ("Anna", "Béla", "Chloé", "Dávid", "Emma", "Felix", "Gréta", "Hugo", "Iris", "János")
_LAST = ("Kovács", "Nagy", "Smith", "Müller", "Dubois", "Rossi", "Novak", "García")


def customers(count: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """(customer_id, external_customer_id); about a quarter have no external ID."""
    return [
        (f"c-{i}", f"ext-{i:06d}" if rng.random() > 0.25 else None) for i in range(1, count + 1)
    ]


def _event_data(action: str, rng: random.Random) -> dict:
    if action == "point_add":
        return {
            "points": rng.randint(1, 500),
            "reason": rng.choice(["bonus", "campaign", "manual"]),
        }
    if action in ("checkout", "purchase"):
        items = [
            {
                "sku": f"SKU-{rng.randint(100, 999)}",
                "qty": rng.randint(1, 3),
                "price": round(rng.uniform(2, 120), 2),
            }
            for _ in range(rng.randint(1, 3))
        ]
        return {
            "transaction_id": f"t-{rng.getrandbits(40):x}",
            "total": round(sum(i["price"] * i["qty"] for i in items), 2),
            "items": items,
        }
    if action == "reward_claim":
        return {
            "reward": rng.choice(["free-coffee", "10-off", "gift-card"]),
            "cost": rng.randint(50, 900),
        }
    return {"channel": rng.choice(["web", "app", "store"])}


def _attributes(rng: random.Random) -> dict:
    chosen = rng.sample(FIELDS, rng.randint(1, 3))
    values = {
        "first_name": rng.choice(_FIRST),
        "last_name": rng.choice(_LAST),
        "email": f"user{rng.randint(1, 99999)}@example.com",
        "birth_date": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "gender": rng.choice(["female", "male", "other"]),
        "language": rng.choice(["en", "hu", "de", "fr"]),
        "phone": f"+36 30 {rng.randint(1000000, 9999999)}",
        "tier": rng.choice(["bronze", "silver", "gold"]),
        "score": rng.randint(0, 1000),
    }
    return {k: values[k] for k in chosen}


def generate_events(
    count: int, people: list[tuple[str, str | None]], rng: random.Random
) -> Iterator[NewEvent]:
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(count):
        cid, ext = rng.choice(people)
        action = rng.choice(ACTIONS)
        yield NewEvent(
            cid, action, _event_data(action, rng), ext, start + timedelta(milliseconds=i)
        )


def generate_profile_changes(
    count: int, people: list[tuple[str, str | None]], rng: random.Random
) -> Iterator[NewProfileChange]:
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(count):
        cid, ext = rng.choice(people)
        yield NewProfileChange(cid, _attributes(rng), ext, start + timedelta(milliseconds=i))


def seed(
    store: LoyaltyStore,
    events: int,
    profiles: int,
    customer_count: int = 1000,
    seed_value: int = 7,
    chunk: int = 20_000,
) -> tuple[int, int]:
    """Append synthetic events and profile changes in chunks (bounded memory); returns counts."""
    rng = random.Random(seed_value)
    people = customers(customer_count, rng)
    batch: list = []
    for event in generate_events(events, people, rng):
        batch.append(event)
        if len(batch) >= chunk:
            store.append_events(batch)
            batch = []
    store.append_events(batch)
    batch = []
    for change in generate_profile_changes(profiles, people, rng):
        batch.append(change)
        if len(batch) >= chunk:
            store.append_profile_changes(batch)
            batch = []
    store.append_profile_changes(batch)
    return events, profiles
