"""Several Segment destinations: every customer's messages go to their region's destination."""

from __future__ import annotations

import pytest

from segment_sync.cli.outbound_runs import run_manual_outbound
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import routed_settings, two_regions, users


@pytest.fixture
def regions(monkeypatch):
    with two_regions(monkeypatch) as both:
        yield both


def seed(settings, countries: dict[str, str | None], events_each: int = 3) -> None:
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_profile_changes(
        [
            NewProfileChange(c, {"first_name": c} | ({"country": v} if v else {}))
            for c, v in countries.items()
        ]
    )
    store.append_events(
        [NewEvent(c, "point_add", {"n": i}) for i in range(events_each) for c in countries]
    )


def test_each_customer_is_sent_only_to_the_destination_of_their_country(write_settings, regions):
    settings = load_settings(routed_settings(write_settings, regions))
    seed(settings, {"anna": "DE", "marc": "FR", "bob": "US", "joe": "US"})

    assert run_manual_outbound(settings, "all", "run-routed", echo=lambda _: None)

    eu, us = users(regions.eu), users(regions.us)
    assert sorted(eu) == ["anna", "marc"] and sorted(us) == ["bob", "joe"]
    for customer in [*eu.values(), *us.values()]:  # one identify and three tracks each
        assert sorted(m.split(":")[0] for m in customer) == ["identify", "track", "track", "track"]
    assert regions.eu.dropped()["messages"] == regions.us.dropped()["messages"] == 0


def test_a_customer_without_a_country_fails_once_naming_the_customer_and_the_setting(
    write_settings, regions
):
    settings = load_settings(routed_settings(write_settings, regions))
    seed(settings, {"anna": "DE", "nobody": None}, events_each=1)
    lines: list[str] = []

    assert not run_manual_outbound(settings, "all", "run-unrouted", echo=lines.append)

    assert sorted(users(regions.eu)) == ["anna"] and users(regions.us) == {}
    with connect(settings.logs.dir) as con:
        failed = con.execute(
            "SELECT stream, destination, error FROM outbound_messages WHERE outcome = 'failed'"
        ).fetchall()
    assert sorted(f[0] for f in failed) == [
        "events",
        "profiles",
    ]  # once per row, not per destination
    assert all(f[1] == "eu" for f in failed)  # reported by the first destination listed
    for _, _, error in failed:
        assert "customer nobody has no 'country'" in error
        assert "outbound.route_by.default" in error


def test_a_default_destination_takes_customers_without_a_known_country(write_settings, regions):
    settings = load_settings(routed_settings(write_settings, regions, default="us"))
    seed(settings, {"anna": "DE", "nobody": None, "kim": "KR"}, events_each=1)

    assert run_manual_outbound(settings, "all", "run-default", echo=lambda _: None)

    assert sorted(users(regions.eu)) == ["anna"]
    assert sorted(users(regions.us)) == ["kim", "nobody"]


def _move(settings, customer: str, country: str) -> None:
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_profile_changes([NewProfileChange(customer, {"country": country, "email": "a@x"})])
    store.append_events([NewEvent(customer, "point_add", {"after_move": True})])


def _quiet(settings, run_id: str, destination: str | None = None) -> bool:
    return run_manual_outbound(
        settings, "all", run_id, echo=lambda _: None, destination=destination
    )


def _kinds(messages: list[str]) -> list[str]:
    return sorted(m.split(":")[0] for m in messages)


def test_a_customer_who_moves_has_later_messages_at_the_new_destination_earlier_ones_at_the_old(
    write_settings, regions
):
    settings = load_settings(routed_settings(write_settings, regions))
    seed(settings, {"anna": "DE"}, events_each=1)
    assert _quiet(settings, "before-move", destination="us")  # US passes anna's rows by
    _move(settings, "anna", "US")

    assert _quiet(settings, "after-move")  # EU sends her rows from before the move, late

    assert _kinds(users(regions.eu)["anna"]) == ["identify", "track"]
    assert _kinds(users(regions.us)["anna"]) == ["identify", "track"]
    assert [m["properties"] for m in regions.us.messages if m["type"] == "track"] == [
        {"after_move": True}
    ]


def test_a_move_after_the_old_destination_sent_sends_nothing_twice(write_settings, regions):
    settings = load_settings(routed_settings(write_settings, regions))
    seed(settings, {"anna": "DE"}, events_each=2)
    assert _quiet(settings, "before-move", destination="eu")
    _move(settings, "anna", "US")

    assert _quiet(settings, "after-move")  # US reads anna's old rows too, and leaves them

    eu_ids = {m["messageId"] for m in regions.eu.messages}
    us_ids = {m["messageId"] for m in regions.us.messages}
    assert len(eu_ids) == 3 and len(us_ids) == 2 and not eu_ids & us_ids
    assert regions.eu.stats()["duplicate_message_ids"] == 0


def test_a_run_that_goes_on_sees_a_move_made_while_it_runs(write_settings, regions):
    from segment_sync.loyalty.records import Stream
    from segment_sync.outbound.route_filter import RouteFilter

    settings = load_settings(routed_settings(write_settings, regions))
    seed(settings, {"anna": "DE"}, events_each=1)
    store = LoyaltyStore(settings.loyalty_store.url)
    us = RouteFilter.of(settings.for_destination("us"), store)  # one filter, as in a follow run
    assert us.records(store.events_after(0, 10**9, 100), Stream.EVENTS) == ([], [])

    _move(settings, "anna", "US")  # the move and a later event commit while the run goes on

    kept, _ = us.records(store.events_after(0, 10**9, 100), Stream.EVENTS)
    assert [e.data for e in kept] == [{"after_move": True}]


def test_customers_are_routed_from_a_postgresql_store(write_settings, regions, pg_url):
    path = routed_settings(write_settings, regions)
    import yaml

    data = yaml.safe_load(path.read_text())
    data["loyalty_store"]["url"] = pg_url
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    seed(settings, {"anna": "DE", "bob": "US"}, events_each=2)
    _move(settings, "anna", "US")

    assert run_manual_outbound(settings, "all", "run-pg", echo=lambda _: None)

    assert _kinds(users(regions.eu)["anna"]) == ["identify", "track", "track"]
    assert _kinds(users(regions.us)["anna"]) == ["identify", "track"]
    assert _kinds(users(regions.us)["bob"]) == ["identify", "track", "track"]
