"""A row's destination is decided once: destinations routing at different times agree."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.definitions import build_definitions
from segment_sync.loyalty.records import NewEvent, NewProfileChange, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.route_decisions import RouteDecisions, prune_decisions
from segment_sync.outbound.route_decisions import decisions as route_table
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


def test_pruning_forgets_exactly_the_decisions_older_than_the_given_days(state_url, tmp_path):
    decisions = RouteDecisions(state_url, f"sqlite:///{tmp_path}/loyalty.db")
    decisions.settle(Stream.EVENTS, list(range(1, 11)), lambda ask: [Route("eu") for _ in ask])
    with decisions.engine.begin() as conn:  # rows 1-4 were decided 31-34 days ago, 5 under 30
        for row_id in range(1, 5):
            conn.execute(
                route_table.update()
                .where(route_table.c.row_id == row_id)
                .values(decided_at=time.time() - (30 + row_id) * 86_400)
            )
        conn.execute(
            route_table.update()
            .where(route_table.c.row_id == 5)
            .values(decided_at=time.time() - 29.9 * 86_400)
        )

    assert prune_decisions(state_url, 30) == 4
    with decisions.engine.connect() as conn:
        left = conn.execute(sa.select(route_table.c.row_id).order_by(route_table.c.row_id))
        assert [row_id for (row_id,) in left] == list(range(5, 11))


def test_the_hourly_maintenance_forgets_routing_decisions_older_than_the_log_retention(
    write_settings, regions
):
    path = routed_settings(write_settings, regions, default="us")
    data = yaml.safe_load(path.read_text())
    data["logs"] = {**data.get("logs", {}), "retention_days": 30}
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    LoyaltyStore(settings.loyalty_store.url).append_events(
        [NewEvent(f"c-{i}", "point_add") for i in range(6)]
    )
    _events(settings, "routes-them", "us")
    decisions = RouteDecisions(settings.outbound.state_url, settings.loyalty_store.url)
    with decisions.engine.begin() as conn:
        conn.execute(
            route_table.update()
            .where(route_table.c.row_id <= 2)
            .values(decided_at=time.time() - 31 * 86_400)
        )

    with dg.instance_for_test() as instance:
        job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
        result = job.execute_in_process(instance=instance)

    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert output.event_specific_data.metadata["route_decisions_removed"].value == 2
    with decisions.engine.connect() as conn:
        left = conn.execute(sa.select(route_table.c.row_id).order_by(route_table.c.row_id))
        assert [row_id for (row_id,) in left] == [3, 4, 5, 6]


def test_a_state_database_made_before_the_age_index_gets_it(tmp_path):
    state = tmp_path / "state.db"
    with sqlite3.connect(state) as db:  # the table as the first version of routing made it
        db.execute(
            "CREATE TABLE outbound_route_decisions (source TEXT, stream TEXT, row_id BIGINT, "
            "destination TEXT, reason TEXT, decided_at FLOAT NOT NULL, "
            "PRIMARY KEY (source, stream, row_id))"
        )

    decisions = RouteDecisions(f"sqlite:///{state}", f"sqlite:///{tmp_path}/loyalty.db")

    indexes = sa.inspect(decisions.engine).get_indexes("outbound_route_decisions")
    assert [i["column_names"] for i in indexes] == [["decided_at"]]


def test_a_maintenance_run_whose_prune_fails_still_maintains_the_logs_and_fails_naming_it(
    write_settings, regions
):
    path = routed_settings(write_settings, regions, default="us")
    data = yaml.safe_load(path.read_text())
    # No PostgreSQL listens on port 1: the state database cannot be reached.
    data["outbound"]["state_url"] = "postgresql://sync:hunter2@127.0.0.1:1/state"
    path.write_text(yaml.safe_dump(data))

    with dg.instance_for_test() as instance:
        job = build_definitions(str(path)).resolve_job_def("log_maintenance_job")
        result = job.execute_in_process(instance=instance, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert "could not prune the routing decisions in outbound.state_url" in message
    assert "hunter2" not in message
    assert [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
