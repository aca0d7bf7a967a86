"""outbound.destinations and outbound.route_by: what is accepted, what is refused and why."""

from __future__ import annotations

import pytest

from segment_sync.settings import SettingsError, parse_settings

EU = {"name": "eu", "region": "eu", "write_key_env": "SEGMENT_WRITE_KEY_EU"}
US = {"name": "us", "region": "us", "write_key_env": "SEGMENT_WRITE_KEY_US"}
ROUTE = {"attribute": "country", "map": {"DE": "eu", "US": "us"}}


def outbound(**values):
    return parse_settings({"outbound": values})


def refused(**values) -> str:
    with pytest.raises(SettingsError) as caught:
        outbound(**values)
    return str(caught.value)


def test_without_destinations_the_single_destination_is_todays():
    settings = outbound(region="eu", write_key_env="MY_KEY")
    assert settings.destination_names() == [None]
    assert settings.for_destination(None) is settings
    assert settings.outbound.destination is None


def test_each_destination_sees_its_own_region_write_key_and_endpoint():
    settings = outbound(destinations=[EU, US], route_by=ROUTE)
    eu = settings.for_destination("eu").outbound
    assert (eu.destination, eu.region, eu.write_key_env) == ("eu", "eu", "SEGMENT_WRITE_KEY_EU")
    assert str(eu.endpoint) == "https://events.eu1.segmentapis.com"
    assert settings.for_destination("us").outbound.endpoint.reveal() == "https://api.segment.io"
    assert {"SEGMENT_WRITE_KEY_EU", "SEGMENT_WRITE_KEY_US"} <= set(settings.secret_env_names())


def test_a_route_to_a_destination_not_listed_is_refused_naming_it():
    problem = refused(destinations=[EU], route_by={"attribute": "country", "map": {"US": "us"}})
    assert "outbound.route_by: us is not one of outbound.destinations (eu)" in problem


def test_destinations_without_route_by_are_refused():
    assert "outbound.route_by is required with outbound.destinations" in refused(
        destinations=[EU, US]
    )


def test_route_by_without_destinations_is_refused():
    assert "outbound.route_by needs outbound.destinations" in refused(route_by=ROUTE)


def test_the_single_destinations_keys_beside_destinations_are_refused():
    problem = refused(region="eu", destinations=[EU, US], route_by=ROUTE)
    assert "outbound.region: with outbound.destinations each destination has its own" in problem


def test_two_destinations_with_one_name_or_one_source_are_refused():
    assert "names must differ (eu twice)" in refused(
        destinations=[EU, {**US, "name": "eu"}], route_by={"attribute": "c"}
    )
    assert "would be one Segment source" in refused(
        destinations=[EU, {**EU, "name": "eu2"}], route_by={"attribute": "c"}
    )


def test_a_pasted_write_key_in_a_destination_is_refused_without_showing_it():
    secret = "abcdefghijklmnopqrstuvwxyz012345"
    problem = refused(destinations=[{**EU, "write_key_env": secret}, US], route_by=ROUTE)
    assert "looks like the secret itself" in problem and secret not in problem


def test_an_unknown_destination_is_a_clear_error():
    settings = outbound(destinations=[EU, US], route_by=ROUTE)
    with pytest.raises(
        SettingsError, match=r"no destination 'ap' in outbound.destinations \(configured: eu, us\)"
    ):
        settings.for_destination("ap")


def test_outbound_is_off_while_a_destinations_write_key_is_unset(monkeypatch):
    from segment_sync.directions import missing_secrets, outbound_off

    monkeypatch.setenv("SEGMENT_WRITE_KEY_EU", "k1")
    monkeypatch.delenv("SEGMENT_WRITE_KEY_US", raising=False)
    settings = outbound(destinations=[EU, US], route_by=ROUTE)
    assert "SEGMENT_WRITE_KEY_US (outbound.destinations[us].write_key_env)" in outbound_off(
        settings
    )
    assert "SEGMENT_WRITE_KEY_US (outbound.destinations[us].write_key_env)" in missing_secrets(
        settings
    )
    assert not any("SEGMENT_WRITE_KEY_EU" in m for m in missing_secrets(settings))
