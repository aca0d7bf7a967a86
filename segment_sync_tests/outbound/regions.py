"""Two Segment stand-ins side by side (EU and US) and settings routing customers by country."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync.standins.segment import SegmentStandin
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import EU_WRITE_KEY, WRITE_KEY

US_KEY, EU_KEY = WRITE_KEY, EU_WRITE_KEY
KEYS = {US_KEY: "us", EU_KEY: "eu"}


@dataclass
class Regions:
    eu: SegmentStandin
    us: SegmentStandin

    def outbound(self, **route_by) -> dict:
        """The outbound settings of the two destinations, customers routed by `country`."""
        rule = {"attribute": "country", "map": {"DE": "eu", "FR": "eu", "US": "us"}, **route_by}
        return {
            "base_url": None,
            "destinations": [
                {"name": "eu", "region": "eu", "write_key_env": "SEGMENT_WRITE_KEY_EU",
                 "base_url": self.eu.url},
                {"name": "us", "region": "us", "write_key_env": "SEGMENT_WRITE_KEY_US",
                 "base_url": self.us.url},
            ],
            "route_by": rule,
        }  # fmt: skip


@contextmanager
def two_regions(monkeypatch) -> Iterator[Regions]:
    """An EU and a US Segment stand-in on loopback, each knowing both keys (so a message sent
    to the wrong one is answered 200 and dropped, as Segment does)."""
    monkeypatch.setenv("SEGMENT_WRITE_KEY_EU", EU_KEY)
    monkeypatch.setenv("SEGMENT_WRITE_KEY_US", US_KEY)
    eu, us = SegmentStandin("eu", KEYS), SegmentStandin("us", KEYS)
    with serve_in_thread(eu.app) as eu_url, serve_in_thread(us.app) as us_url:
        eu.url, us.url = eu_url, us_url
        yield Regions(eu, us)


def routed_settings(
    write_settings, regions: Regions, outbound: dict | None = None, **route_by
) -> Path:
    """A settings file with the two destinations (drops the single destination's base_url),
    and any other `outbound` keys."""
    path = write_settings(outbound={**regions.outbound(**route_by), **(outbound or {})})
    import yaml

    data = yaml.safe_load(path.read_text())
    data["outbound"].pop("base_url", None)
    path.write_text(yaml.safe_dump(data))
    return path


def users(standin: SegmentStandin) -> dict[str, list[str]]:
    """Each customer's accepted messages, as `type:messageId`, in arrival order."""
    seen: dict[str, list[str]] = {}
    for m in standin.messages:
        seen.setdefault(m["userId"], []).append(f"{m['type']}:{m['messageId']}")
    return seen


def anna_in_eu_bob_in_us(
    path: Path, event_customers: tuple[str, ...]
) -> tuple[LoyaltyStore, list[int]]:
    """The routed store of `path`'s settings: anna lives in DE (eu), bob in US (us), and one
    point_add event per customer in `event_customers`, in order; the store and the events' ids."""
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_profile_changes(
        [NewProfileChange("anna", {"country": "DE"}), NewProfileChange("bob", {"country": "US"})]
    )
    return store, store.append_events([NewEvent(c, "point_add") for c in event_customers])
