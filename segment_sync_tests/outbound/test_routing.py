"""The routing rule: a row goes where the customer's attribute pointed as of that row."""

from __future__ import annotations

from datetime import UTC, datetime

from segment_sync.loyalty.records import Stream
from segment_sync.outbound.routing import route
from segment_sync.settings.destinations import RouteBySettings

RULE = RouteBySettings(attribute="country", map={"DE": "eu", "US": "us", "true": "us"})
T = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(6)]
# DE at hour 1 (profile change 10), US at hour 3 (profile change 20)
MOVED = [(T[1], 10, "DE"), (T[3], 20, "US")]


def test_an_event_goes_where_the_attribute_pointed_when_it_occurred():
    assert route(RULE, MOVED, Stream.EVENTS, "anna", T[2], 5).destination == "eu"
    assert route(RULE, MOVED, Stream.EVENTS, "anna", T[4], 6).destination == "us"


def test_an_event_at_the_moment_of_the_move_goes_to_the_new_destination():
    assert route(RULE, MOVED, Stream.EVENTS, "anna", T[3], 1).destination == "us"


def test_the_profile_change_that_moves_a_customer_goes_to_the_new_destination():
    assert route(RULE, MOVED, Stream.PROFILES, "anna", T[3], 20).destination == "us"
    assert route(RULE, MOVED, Stream.PROFILES, "anna", T[1], 10).destination == "eu"


def test_an_event_before_any_value_has_no_destination_and_says_how_to_fix_it():
    routed = route(RULE, MOVED, Stream.EVENTS, "anna", T[0], 1)
    assert routed.destination is None
    assert "customer anna has no 'country'" in routed.reason
    assert "outbound.route_by.default" in routed.reason


def test_an_unmapped_value_names_the_value_and_the_map():
    routed = route(RULE, [(T[0], 1, "KR")], Stream.EVENTS, "kim", T[1], 1)
    assert routed.destination is None and "has country 'KR'" in routed.reason
    assert "outbound.route_by.map" in routed.reason


def test_the_default_takes_customers_without_a_mapped_value():
    rule = RouteBySettings(attribute="country", map={"DE": "eu"}, default="us")
    assert route(rule, [], Stream.EVENTS, "kim", T[1], 1).destination == "us"
    assert route(rule, [(T[0], 1, None)], Stream.EVENTS, "kim", T[1], 1).destination == "us"


def test_values_are_compared_as_text():
    assert route(RULE, [(T[0], 1, True)], Stream.EVENTS, "b", T[1], 1).destination == "us"
