"""A row's destination is decided once: destinations routing at different times agree."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.loyalty.records import NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.route_decisions import RouteDecisions
from segment_sync.outbound.routing import Route
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import routed_settings, two_regions, users


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def _events(settings, run_id: str, destination: str) -> None:
    run_manual_outbound(settings, "events", run_id, echo=lambda _: None, destination=destination)


@pytest.mark.parametrize("first,later", [("eu", "us"), ("us", "eu")])
def test_an_event_routed_before_a_backdated_move_is_delivered_once_at_one_destination(
    write_settings, regions, first, later
):
    settings = load_settings(routed_settings(write_settings, regions, default="us"))
    store = LoyaltyStore(settings.loyalty_store.url)
    occurred = datetime.now(UTC)
    store.append_events([NewEvent("anna", "point_add", occurred_at=occurred)])

    _events(settings, "first", first)  # routes it with no country yet: the default, us
    moved = NewProfileChange("anna", {"country": "DE"}, occurred_at=occurred - timedelta(seconds=1))
    store.append_profile_changes([moved])  # committed later, occurred before the event
    _events(settings, "later", later)

    tracks = [m for m in regions.eu.messages + regions.us.messages if m["type"] == "track"]
    assert len(tracks) == 1 and users(regions.us) == {"anna": [f"track:{tracks[0]['messageId']}"]}


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("pg_url")


def test_two_destinations_deciding_the_same_rows_at_once_agree(state_url, tmp_path):
    store_url = f"sqlite:///{tmp_path}/loyalty.db"
    ids = list(range(1, 301))
    both_computed = threading.Barrier(2)
    answers: dict[str, dict[int, Route]] = {}

    def decide(name: str) -> None:
        def compute(ask: list[int]) -> list[Route]:
            both_computed.wait(timeout=30)  # each has its own answer before either stores it
            return [Route(name) for _ in ask]

        decisions = RouteDecisions(state_url, store_url)
        answers[name] = decisions.settle(Stream.EVENTS, ids, compute)

    threads = [threading.Thread(target=decide, args=(n,)) for n in ("eu", "us")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert answers["eu"] == answers["us"]
    assert len({r.destination for r in answers["eu"].values()}) == 1


def test_a_row_routed_nowhere_takes_a_destination_once_its_customer_has_one(tmp_path):
    decisions = RouteDecisions(f"sqlite:///{tmp_path}/state.db", f"sqlite:///{tmp_path}/l.db")
    nowhere = Route(None, "customer anna has no 'country'")

    assert decisions.settle(Stream.EVENTS, [7], lambda ask: [nowhere]) == {7: nowhere}
    assert decisions.settle(Stream.EVENTS, [7], lambda ask: [Route("eu")]) == {7: Route("eu")}
    assert decisions.settle(Stream.EVENTS, [7], lambda ask: [Route("us")]) == {7: Route("eu")}
