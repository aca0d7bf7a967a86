"""Mappings produce what Segment's Antavo (Actions) destination sends for the same events."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from segment_sync.inbound.mapping.actions import (
    ACTIONS,
    LOYALTY_EVENT,
    PROFILE_UPDATE,
    Mapping,
    profile_updates_mapping,
)
from segment_sync.inbound.mapping.antavo_event import (
    MappingOutcome,
    apply_mappings,
    build_antavo_event,
)
from segment_sync.inbound.mapping.evaluator import MappingError, resolve

FIXTURE_NAME = "antavo_actions_destination_examples.json"
FIXTURE_COPY = Path(__file__).parent / "fixtures" / FIXTURE_NAME
SHARED_FIXTURE = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / FIXTURE_NAME
FIXTURE = json.loads(FIXTURE_COPY.read_text(encoding="utf-8"))

LOYALTY = Mapping(
    name="Loyalty events",
    action=LOYALTY_EVENT,
    trigger='type = "track"',
    fields=FIXTURE["loyalty_event_mapping"],
)
PROFILE = profile_updates_mapping()


def exact(value: Any) -> str:
    """JSON text that tells 120 from 120.0 and "15" from 15, for exact comparisons."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def track(**properties: Any) -> dict[str, Any]:
    """A track event for user c-1 with the given properties."""
    return {"type": "track", "userId": "c-1", "event": "Order Completed", "properties": properties}


def loyalty(**fields: Any) -> Mapping:
    """A loyalty-event mapping with the given field mappings."""
    return Mapping(name="Checkout", action=LOYALTY_EVENT, trigger='type = "track"', fields=fields)


# --- the fixture: Segment's own destination, event by event ---------------------------------------


@pytest.mark.parametrize(
    "case", FIXTURE["cases"], ids=[c["segment_event"]["messageId"] for c in FIXTURE["cases"]]
)
def test_fixture_case_is_reproduced_exactly(case: dict[str, Any]) -> None:
    """Each Segment event gives exactly the body (or the error) Segment's destination gives."""
    outcomes = apply_mappings([PROFILE, LOYALTY], case["segment_event"], multi_accounts=False)
    assert len(outcomes) == 1
    outcome = outcomes[0]
    if "error" in case:
        assert outcome.antavo_event is None
        assert outcome.error == case["error"]
    else:
        assert outcome.error is None
        assert exact(outcome.antavo_event) == exact(case["antavo_request_body_without_api_key"])


def test_fixture_copy_matches_the_shared_original() -> None:
    """The copy the tests load is byte-for-byte the shared fixture; CI must have the original."""
    if not SHARED_FIXTURE.exists():
        # Under CI (SEGMENT_SYNC_CI=1, set by .ci/run) a missing original is a failure, not a skip.
        assert os.environ.get("SEGMENT_SYNC_CI") != "1", f"shared fixture missing: {SHARED_FIXTURE}"
        pytest.skip(f"shared fixture not present at {SHARED_FIXTURE}; the copy is used alone")
    assert FIXTURE_COPY.read_bytes() == SHARED_FIXTURE.read_bytes()


# --- directives ------------------------------------------------------------------------------------

EVENT = {
    "type": "track",
    "userId": "u-1",
    "properties": {
        "name": "Tom & Jerry's <b>",
        "total": 10.0,
        "items": [{"sku": "A-1"}, {"sku": "B-2"}],
        "empty": "",
        "nothing": None,
        "zero": 0,
    },
    "traits": {"first_name": "Anna"},
}


def test_path_reads_a_dotted_path() -> None:
    """@path with $. reads the value at that path."""
    assert resolve({"@path": "$.properties.name"}, EVENT) == "Tom & Jerry's <b>"


def test_path_works_without_the_dollar_prefix() -> None:
    """@path accepts the path without the leading $. as mapping-kit does."""
    assert resolve({"@path": "traits.first_name"}, EVENT) == "Anna"


def test_path_reads_array_indexes() -> None:
    """@path understands [0] and .0 for list items."""
    assert resolve({"@path": "$.properties.items[1].sku"}, EVENT) == "B-2"
    assert resolve({"@path": "$.properties.items.0.sku"}, EVENT) == "A-1"


def test_path_to_a_missing_value_resolves_to_none() -> None:
    """@path to nothing resolves to None at the top level."""
    assert resolve({"@path": "$.properties.absent.deeper"}, EVENT) is None


def test_path_returns_whole_objects() -> None:
    """@path can pick an object, which is copied into the output as is."""
    assert resolve({"@path": "$.traits"}, EVENT) == {"first_name": "Anna"}


def test_literal_returns_its_value_unchanged() -> None:
    """@literal keeps strings that look like templates as they are."""
    assert resolve({"@literal": "{{not.a.template}}"}, EVENT) == "{{not.a.template}}"
    assert resolve({"@literal": True}, EVENT) is True


def test_template_fills_placeholders() -> None:
    """@template replaces {{path}} with the value at that path."""
    assert resolve({"@template": "Hi {{traits.first_name}} ({{userId}})"}, EVENT) == "Hi Anna (u-1)"


def test_template_renders_missing_values_as_empty_text() -> None:
    """A placeholder with no value becomes an empty string."""
    assert resolve({"@template": "Hi {{traits.last_name}}!"}, EVENT) == "Hi !"


def test_template_renders_numbers_as_javascript_does() -> None:
    """Numbers render as JavaScript prints them: 10.0 is "10"."""
    assert resolve({"@template": "{{properties.total}} EUR"}, EVENT) == "10 EUR"


def test_template_double_braces_escape_html_as_mapping_kit_does() -> None:
    """{{x}} HTML-escapes the value, exactly as Segment's mapping-kit does."""
    rendered = resolve({"@template": "{{properties.name}}"}, EVENT)
    assert rendered == "Tom &amp; Jerry&#39;s &lt;b&gt;"


def test_template_triple_braces_do_not_escape() -> None:
    """{{{x}}} inserts the value unescaped."""
    assert resolve({"@template": "{{{properties.name}}}"}, EVENT) == "Tom & Jerry's <b>"


def test_if_exists_takes_then_when_the_value_exists() -> None:
    """@if exists picks "then" for a present value."""
    mapping = {"@if": {"exists": {"@path": "$.traits.first_name"}, "then": "yes", "else": "no"}}
    assert resolve(mapping, EVENT) == "yes"


def test_if_exists_takes_else_when_the_value_is_missing() -> None:
    """@if exists picks "else" for a missing value."""
    mapping = {"@if": {"exists": {"@path": "$.traits.nope"}, "then": "yes", "else": "no"}}
    assert resolve(mapping, EVENT) == "no"


def test_if_exists_treats_null_as_missing() -> None:
    """A null value does not exist for @if."""
    mapping = {"@if": {"exists": {"@path": "$.properties.nothing"}, "then": "yes", "else": "no"}}
    assert resolve(mapping, EVENT) == "no"


def test_if_without_the_chosen_branch_resolves_to_nothing() -> None:
    """A missing branch leaves the field out (None at the top, absent inside objects)."""
    mapping = {"@if": {"exists": {"@path": "$.traits.nope"}, "then": "yes"}}
    assert resolve(mapping, EVENT) is None
    assert resolve({"flag": mapping, "kept": 1}, EVENT) == {"kept": 1}


def test_if_blank_treats_empty_string_as_blank() -> None:
    """@if blank is false for "" (and for null or missing)."""
    mapping = {"@if": {"blank": {"@path": "$.properties.empty"}, "then": "set", "else": "blank"}}
    assert resolve(mapping, EVENT) == "blank"


def test_if_blank_treats_zero_as_blank_like_javascript() -> None:
    """@if blank uses JavaScript's loose != '' so 0 counts as blank, as in mapping-kit."""
    mapping = {"@if": {"blank": {"@path": "$.properties.zero"}, "then": "set", "else": "blank"}}
    assert resolve(mapping, EVENT) == "blank"


def test_if_blank_takes_then_for_text() -> None:
    """@if blank picks "then" for non-empty text."""
    mapping = {"@if": {"blank": {"@path": "$.traits.first_name"}, "then": "set", "else": "blank"}}
    assert resolve(mapping, EVENT) == "set"


def test_directives_nest_inside_objects_and_lists() -> None:
    """Objects and lists resolve member by member; plain values stay literal."""
    mapping = {
        "who": {"@path": "$.userId"},
        "fixed": 42,
        "list": [{"@path": "$.traits.first_name"}, "x"],
        "deep": {"greeting": {"@template": "Hi {{traits.first_name}}"}},
    }
    assert resolve(mapping, EVENT) == {
        "who": "u-1",
        "fixed": 42,
        "list": ["Anna", "x"],
        "deep": {"greeting": "Hi Anna"},
    }


def test_plain_values_are_literals() -> None:
    """Strings, numbers, booleans and null resolve to themselves."""
    for value in ("checkout", 7, 1.5, False, None):
        assert resolve(value, EVENT) == value


def test_unknown_directive_is_a_mapping_error() -> None:
    """An unknown @directive fails with mapping-kit's message."""
    with pytest.raises(MappingError, match="@nope is not a valid directive"):
        resolve({"@nope": "x"}, EVENT)


def test_path_with_a_non_string_is_a_mapping_error() -> None:
    """@path needs a string."""
    with pytest.raises(MappingError, match="@path: expected string, got number"):
        resolve({"@path": 5}, EVENT)


def test_if_without_a_condition_is_a_mapping_error() -> None:
    """@if needs "exists" or "blank"."""
    with pytest.raises(MappingError, match='"exists" key or a "blank" key'):
        resolve({"@if": {"then": "x"}}, EVENT)


# --- building the Antavo request -------------------------------------------------------------------


def test_user_field_replaces_the_default_for_that_field_only() -> None:
    """A mapped customer replaces the $.userId default; other defaults stay."""
    mapping = Mapping(
        "Profiles by email",
        PROFILE_UPDATE,
        'type = "identify"',
        fields={"customer": {"@path": "$.traits.email"}},
    )
    event = {"type": "identify", "userId": "u-9", "traits": {"email": "a@b.c", "gender": "f"}}
    assert build_antavo_event(mapping, event, multi_accounts=False) == {
        "customer": "a@b.c",
        "data": {"email": "a@b.c", "gender": "f"},
        "action": "profile",
    }


def test_mapped_data_replaces_the_whole_default_data_object() -> None:
    """data is one field: mapping it replaces every default data item."""
    mapping = Mapping(
        "Email only",
        PROFILE_UPDATE,
        'type = "identify"',
        fields={"data": {"email": {"@path": "$.traits.email"}}},
    )
    event = {"type": "identify", "userId": "u-9", "traits": {"email": "a@b.c", "gender": "f"}}
    body = build_antavo_event(mapping, event, multi_accounts=False)
    assert body["data"] == {"email": "a@b.c"}


def test_profile_updates_always_send_the_profile_action() -> None:
    """The Antavo action of a profile update is "profile" whatever the event."""
    event = {"type": "identify", "userId": "u-9", "traits": {}}
    assert build_antavo_event(PROFILE, event, multi_accounts=False)["action"] == "profile"


def test_string_fields_are_coerced_from_numbers_and_booleans() -> None:
    """customer and action are strings in the request even when the event has 42 or true."""
    mapping = loyalty(customer={"@path": "$.properties.id"}, action={"@path": "$.properties.ok"})
    body = build_antavo_event(mapping, track(id=42, ok=True), multi_accounts=False)
    assert (body["customer"], body["action"]) == ("42", "true")


def test_whole_floats_are_coerced_as_javascript_prints_them() -> None:
    """A customer id of 1234.0 becomes "1234", as JavaScript's String() gives."""
    mapping = loyalty(customer={"@path": "$.properties.id"}, action="checkout")
    assert build_antavo_event(mapping, track(id=1234.0), multi_accounts=False)["customer"] == "1234"


def test_one_item_list_is_coerced_to_its_item_for_string_fields() -> None:
    """Ajv's coerceTypes "array" turns ["x"] into "x" for a string field."""
    mapping = loyalty(action={"@path": "$.properties.actions"})
    body = build_antavo_event(mapping, track(actions=["checkout"]), multi_accounts=False)
    assert body["action"] == "checkout"


def test_object_in_a_string_field_is_a_mapping_error() -> None:
    """An object where Antavo wants a string fails with Ajv's human-readable message."""
    event = {"type": "identify", "userId": "u-1", "traits": {"email": {"home": "a@b.c"}}}
    with pytest.raises(MappingError) as info:
        build_antavo_event(PROFILE, event, multi_accounts=False)
    assert str(info.value) == "The value at /data/email must be a string but it was an object."


def test_data_that_is_not_an_object_is_a_mapping_error() -> None:
    """data must resolve to an object."""
    mapping = loyalty(action="checkout", data={"@path": "$.properties.coupon"})
    with pytest.raises(MappingError) as info:
        build_antavo_event(mapping, track(coupon="SPRING"), multi_accounts=False)
    assert str(info.value) == "The value at /data must be an object but it was a string."


def test_loyalty_data_keeps_value_types() -> None:
    """Loyalty event data is free-form: numbers stay numbers, strings stay strings."""
    mapping = loyalty(action="checkout", data={"n": {"@path": "$.properties.n"}, "s": "7"})
    body = build_antavo_event(mapping, track(n=3), multi_accounts=False)
    assert exact(body["data"]) == exact({"n": 3, "s": "7"})


def test_empty_values_are_left_out_at_every_depth() -> None:
    """null, "" and unresolved values disappear from data, nested objects and lists."""
    mapping = loyalty(
        action="checkout",
        data={
            "a": {"@path": "$.properties.nothing"},
            "b": "",
            "c": {"x": None, "y": 1},
            "d": [None, "", 2],
            "e": {"@path": "$.properties.absent"},
        },
    )
    body = build_antavo_event(mapping, track(nothing=None), multi_accounts=False)
    assert body["data"] == {"c": {"y": 1}, "d": [2]}


def test_empty_customer_is_a_missing_required_field() -> None:
    """An empty-string customer counts as missing, as in Segment's own destination tests."""
    mapping = loyalty(customer="", action="checkout")
    with pytest.raises(MappingError) as info:
        build_antavo_event(mapping, track(), multi_accounts=False)
    assert str(info.value) == "The root value is missing the required field 'customer'."


def test_every_missing_required_field_is_reported() -> None:
    """Several missing required fields are reported together, in field order."""
    mapping = loyalty(action={"@path": "$.properties.antavoAction"})
    event = {"type": "track", "properties": {}}
    with pytest.raises(MappingError) as info:
        build_antavo_event(mapping, event, multi_accounts=False)
    assert str(info.value) == (
        "The root value is missing the required field 'customer'. "
        "The root value is missing the required field 'action'."
    )


def test_unknown_fields_are_not_sent() -> None:
    """A field the action does not define never reaches the Antavo request."""
    mapping = loyalty(action="checkout", external_id="x")
    assert "external_id" not in build_antavo_event(mapping, track(), multi_accounts=False)


def test_building_does_not_modify_the_mapping_or_the_defaults() -> None:
    """Building a request leaves the mapping and the action defaults untouched."""
    before_fields = json.dumps(LOYALTY.fields, sort_keys=True)
    before_defaults = json.dumps(dict(ACTIONS[PROFILE_UPDATE].defaults), sort_keys=True)
    build_antavo_event(LOYALTY, track(antavoAction="checkout", points=1), multi_accounts=False)
    build_antavo_event(PROFILE, {"type": "identify", "userId": "u"}, multi_accounts=False)
    assert json.dumps(LOYALTY.fields, sort_keys=True) == before_fields
    assert json.dumps(dict(ACTIONS[PROFILE_UPDATE].defaults), sort_keys=True) == before_defaults


# --- multi-accounts --------------------------------------------------------------------------------


def test_multi_accounts_sends_the_mapped_account() -> None:
    """With multi-accounts on, the resolved account is in the request."""
    event = track(antavoAction="checkout", antavoAccount="acc-1")
    assert build_antavo_event(LOYALTY, event, multi_accounts=True)["account"] == "acc-1"


def test_multi_accounts_refuses_an_event_without_an_account() -> None:
    """With multi-accounts on, an event whose account does not resolve is refused."""
    with pytest.raises(MappingError) as info:
        build_antavo_event(LOYALTY, track(antavoAction="checkout"), multi_accounts=True)
    assert str(info.value) == "The root value is missing the required field 'account'."


def test_without_multi_accounts_a_missing_account_is_left_out() -> None:
    """With multi-accounts off, account is optional and simply omitted."""
    body = build_antavo_event(LOYALTY, track(antavoAction="checkout"), multi_accounts=False)
    assert "account" not in body


def test_multi_accounts_profile_update_carries_the_account() -> None:
    """A profile mapping that maps account sends it alongside action "profile"."""
    mapping = Mapping(
        "Profiles",
        PROFILE_UPDATE,
        'type = "identify"',
        fields={"account": {"@path": "$.context.groupId"}},
    )
    event = {"type": "identify", "userId": "u-1", "traits": {}, "context": {"groupId": "acc-2"}}
    body = build_antavo_event(mapping, event, multi_accounts=True)
    assert (body["account"], body["action"]) == ("acc-2", "profile")


def test_validate_requires_an_account_mapping_with_multi_accounts() -> None:
    """With multi-accounts on, a mapping without an account mapping is a configuration error."""
    errors = PROFILE.validate(multi_accounts=True)
    assert len(errors) == 1
    assert "'Profile updates'" in errors[0] and "'account'" in errors[0]
    assert "multi-accounts" in errors[0]


def test_validate_accepts_no_account_mapping_without_multi_accounts() -> None:
    """With multi-accounts off, the default profile mapping is valid."""
    assert PROFILE.validate(multi_accounts=False) == []


# --- validation ------------------------------------------------------------------------------------


def test_fixture_loyalty_mapping_is_valid_with_and_without_multi_accounts() -> None:
    """The fixture's loyalty mapping maps account, so it is valid either way."""
    assert LOYALTY.validate(multi_accounts=False) == []
    assert LOYALTY.validate(multi_accounts=True) == []


def test_validate_requires_an_action_mapping_for_loyalty_events() -> None:
    """A loyalty-event mapping without an action field mapping names the mapping and field."""
    errors = loyalty(data={"points": 1}).validate(multi_accounts=False)
    assert len(errors) == 1
    assert errors[0].startswith("Mapping 'Checkout' (Loyalty events): field 'action'")


def test_validate_reports_a_trigger_that_does_not_parse() -> None:
    """A bad trigger is reported with the mapping, the field and where it breaks."""
    mapping = Mapping("Broken", LOYALTY_EVENT, 'type = "track" and', {"action": "x"})
    errors = mapping.validate(multi_accounts=False)
    assert len(errors) == 1
    assert errors[0].startswith("Mapping 'Broken' (Loyalty events): field 'trigger' does not parse")
    assert "column 19" in errors[0]


def test_validate_reports_unknown_fields() -> None:
    """A field the action does not define is named with the fields that exist."""
    errors = loyalty(action="x", points=1).validate(multi_accounts=False)
    assert errors == [
        "Mapping 'Checkout' (Loyalty events): unknown field 'points'; "
        "Loyalty events fields are customer, action, account, data."
    ]


def test_validate_reports_an_unknown_action() -> None:
    """An action other than loyalty_event / profile_update is refused."""
    errors = Mapping("Odd", "points_add", 'type = "track"').validate(multi_accounts=False)
    assert len(errors) == 1
    assert "unknown action 'points_add'" in errors[0]


def test_validate_reports_a_cleared_required_field() -> None:
    """Mapping customer to null or "" removes the default and is reported."""
    errors = loyalty(customer=None, action="x").validate(multi_accounts=False)
    assert len(errors) == 1
    assert "field 'customer' is required" in errors[0]


@pytest.mark.parametrize(
    ("field_mapping", "problem"),
    [
        pytest.param({"@path": 5}, "@path needs a string", id="path-not-string"),
        pytest.param({"@nope": "x"}, "unknown directive @nope", id="unknown-directive"),
        pytest.param({"@path": "$.a", "x": 1}, "cannot be mixed", id="mixed-keys"),
        pytest.param({"@path": "$.a", "@literal": 1}, "only one directive", id="two-directives"),
        pytest.param({"@if": {"then": 1}}, '"exists" or a "blank"', id="if-without-condition"),
        pytest.param({"@if": "x"}, "@if needs an object", id="if-not-object"),
        pytest.param({"deep": {"@template": 3}}, "@template needs a string", id="nested"),
    ],
)
def test_validate_reports_malformed_directives(field_mapping: Any, problem: str) -> None:
    """A malformed directive is reported with the mapping and the field it is in."""
    errors = loyalty(action="x", data=field_mapping).validate(multi_accounts=False)
    assert len(errors) == 1
    assert errors[0].startswith("Mapping 'Checkout' (Loyalty events): field 'data': ")
    assert problem in errors[0]


def test_validate_reports_data_that_cannot_be_an_object() -> None:
    """data mapped to plain text can never be an object."""
    errors = loyalty(action="x", data="points").validate(multi_accounts=False)
    assert len(errors) == 1
    assert "field 'data' must map to an object" in errors[0]


# --- applying mappings -----------------------------------------------------------------------------


def test_no_matching_mapping_gives_no_outcomes() -> None:
    """An event no trigger matches yields an empty list."""
    assert apply_mappings([PROFILE], track(), multi_accounts=False) == []


def test_disabled_mappings_are_skipped() -> None:
    """A disabled mapping never produces an outcome."""
    disabled = Mapping("Off", LOYALTY_EVENT, 'type = "track"', {"action": "x"}, enabled=False)
    assert apply_mappings([disabled], track(), multi_accounts=False) == []


def test_each_matching_mapping_gives_one_outcome_in_order() -> None:
    """Two matching mappings give two outcomes, in the order of the mappings."""
    first = loyalty(action="checkout")
    second = Mapping("Points", LOYALTY_EVENT, 'event = "Order Completed"', {"action": "point_add"})
    outcomes = apply_mappings([first, second], track(), multi_accounts=False)
    assert [(o.mapping_name, o.antavo_event["action"]) for o in outcomes] == [  # type: ignore[index]
        ("Checkout", "checkout"),
        ("Points", "point_add"),
    ]


def test_a_failing_mapping_gives_an_error_outcome_not_an_exception() -> None:
    """A missing required field is recorded on the outcome."""
    outcomes = apply_mappings([LOYALTY], track(), multi_accounts=False)
    assert outcomes == [
        MappingOutcome(
            "Loyalty events", None, "The root value is missing the required field 'action'."
        )
    ]


def test_a_mapping_whose_trigger_does_not_parse_never_matches() -> None:
    """As in Segment, a subscription with a broken trigger is skipped."""
    broken = Mapping("Broken", LOYALTY_EVENT, 'type = "track" and', {"action": "x"})
    assert apply_mappings([broken], track(), multi_accounts=False) == []


def test_the_profile_updates_action_listed_bare_has_segments_trigger_and_fields() -> None:
    """ "Profile updates" with no trigger or fields: identify, with Segment's default fields."""
    mapping = profile_updates_mapping()
    assert (mapping.name, mapping.action, mapping.trigger, mapping.enabled) == (
        "Profile updates",
        PROFILE_UPDATE,
        'type = "identify"',
        True,
    )
    data_defaults = mapping.effective_fields()["data"]
    assert data_defaults["birth_date"] == {"@path": "$.traits.birthday"}
    assert set(data_defaults) == {
        "first_name",
        "last_name",
        "email",
        "birth_date",
        "gender",
        "language",
        "phone",
        "mobile_phone",
    }
