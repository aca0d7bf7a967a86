"""Triggers behave as Segment's Destination Actions subscriptions (@segment/destination-subscriptions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_sync.inbound.mapping.triggers import (
    TriggerSyntaxError,
    parse_trigger,
    trigger_matches,
)

TRACK = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u-1",
    "properties": {
        "total": 59.5,
        "points": 120,
        "count": "5",
        "coupon": "SPRING",
        "name": "Nike Air",
        "flag": True,
        "off": False,
        "nothing": None,
        "tags": ["vip"],
        "star": "a*b",
        "nested": {"level": {"deep": "yes"}},
        "product 1": {"price": "19.99"},
    },
    "context": {"library": {"name": "analytics.js", "version": "2.11.1"}, "ip": "1.1.1.1"},
}
IDENTIFY = {
    "type": "identify",
    "userId": "u-2",
    "anonymousId": "anon-2",
    "traits": {"email": "anna@example.com", "logins": 10, "plan": "gold"},
}
PAGE = {"type": "page", "name": "Home", "anonymousId": "anon-3", "properties": {"path": "/"}}

MATCH_CASES = [
    # event type and top-level fields
    pytest.param('type = "track"', TRACK, True, id="type-equals"),
    pytest.param('type = "track"', IDENTIFY, False, id="type-equals-other-type"),
    pytest.param('type != "identify"', TRACK, True, id="type-not-equals"),
    pytest.param('type = "Track"', TRACK, False, id="equality-is-case-sensitive"),
    pytest.param('event = "Order Completed"', TRACK, True, id="event-equals"),
    pytest.param('event = "order completed"', TRACK, False, id="event-equals-case-sensitive"),
    pytest.param('name = "Home"', PAGE, True, id="page-name-equals"),
    pytest.param('userId = "u-1"', TRACK, True, id="user-id-equals"),
    pytest.param('anonymousId = "anon-2"', IDENTIFY, True, id="anonymous-id-equals"),
    pytest.param("userId = null", PAGE, True, id="equals-null-on-missing-field"),
    pytest.param("userId != null", TRACK, True, id="not-null-on-present-field"),
    pytest.param("userId != null", PAGE, False, id="not-null-on-missing-field"),
    # = and != compare as JavaScript String() does
    pytest.param("properties.total = 59.5", TRACK, True, id="number-equals-number"),
    pytest.param("properties.total = 59.50", TRACK, True, id="number-literal-normalised"),
    pytest.param('properties.points = "120"', TRACK, True, id="string-literal-equals-number"),
    pytest.param("properties.count = 5", TRACK, True, id="number-literal-equals-string"),
    pytest.param('properties.tags = "vip"', TRACK, True, id="one-item-list-equals-its-item"),
    pytest.param('properties.missing = "x"', TRACK, False, id="equals-on-missing-field"),
    pytest.param('properties.missing != "x"', TRACK, True, id="not-equals-on-missing-field"),
    pytest.param('properties.coupon != "SPRING"', TRACK, False, id="not-equals-same-value"),
    pytest.param("properties.nothing = null", TRACK, True, id="equals-null-on-null-value"),
    pytest.param("properties.nothing != null", TRACK, False, id="not-null-on-null-value"),
    pytest.param("properties.flag = true", TRACK, True, id="equals-true"),
    pytest.param("properties.off = false", TRACK, True, id="equals-false"),
    pytest.param("properties.flag = false", TRACK, False, id="true-is-not-false"),
    pytest.param("properties.flag != true", TRACK, False, id="not-equals-true"),
    # numeric comparisons: Number(actual) against Number(expected)
    pytest.param("properties.total > 50", TRACK, True, id="greater-than"),
    pytest.param("properties.total < 50", TRACK, False, id="less-than"),
    pytest.param("properties.total >= 59.5", TRACK, True, id="greater-or-equal-boundary"),
    pytest.param("properties.total <= 59.4", TRACK, False, id="less-or-equal-below"),
    pytest.param("properties.points <= 120", TRACK, True, id="less-or-equal-boundary"),
    pytest.param("properties.count > 4", TRACK, True, id="numeric-string-compares-as-number"),
    pytest.param('properties.total > "50"', TRACK, True, id="string-literal-compares-as-number"),
    pytest.param("properties.coupon > 1", TRACK, False, id="non-numeric-string-compares-false"),
    pytest.param("properties.coupon < 1", TRACK, False, id="non-numeric-string-compares-false-2"),
    pytest.param("properties.missing < 10", TRACK, False, id="missing-field-compares-false"),
    pytest.param("properties.missing >= 0", TRACK, False, id="missing-field-compares-false-2"),
    # nested paths
    pytest.param('properties.nested.level.deep = "yes"', TRACK, True, id="nested-path"),
    pytest.param('properties.nested.level.gone = "yes"', TRACK, False, id="nested-path-missing"),
    pytest.param('properties.coupon.inner = "x"', TRACK, False, id="path-through-a-string"),
    pytest.param('context.library.name = "analytics.js"', TRACK, True, id="context-path"),
    pytest.param("traits.logins >= 10", IDENTIFY, True, id="traits-path"),
    pytest.param('traits.plan = "gold"', TRACK, False, id="traits-absent-on-track"),
    pytest.param('properties.product\\ 1.price = "19.99"', TRACK, True, id="escaped-space"),
    # contains()
    pytest.param('contains(event, "Order")', TRACK, True, id="contains"),
    pytest.param('contains(event, "order")', TRACK, False, id="contains-case-sensitive"),
    pytest.param('contains(properties.total, "59")', TRACK, False, id="contains-needs-a-string"),
    pytest.param('!contains(event, "Refund")', TRACK, True, id="not-contains"),
    pytest.param('!contains(properties.gone, "x")', TRACK, False, id="not-contains-missing"),
    pytest.param('contains(traits.email, "@example.com")', IDENTIFY, True, id="contains-trait"),
    # match() globs
    pytest.param('match(event, "Order*")', TRACK, True, id="match-prefix"),
    pytest.param('match(event, "*Completed")', TRACK, True, id="match-suffix"),
    pytest.param('match(event, "Order")', TRACK, False, id="match-is-whole-string"),
    pytest.param('match(event, "Order ?ompleted")', TRACK, True, id="match-question-mark"),
    pytest.param('match(event, "order*")', TRACK, False, id="match-case-sensitive"),
    pytest.param('match(properties.coupon, "[A-Z]*")', TRACK, True, id="match-range"),
    pytest.param('match(properties.star, "a\\*b")', TRACK, True, id="match-escaped-star"),
    pytest.param('match(properties.name, "a\\*b")', TRACK, False, id="match-escaped-star-literal"),
    pytest.param('match(context.library.version, "2.*")', TRACK, True, id="match-version"),
    pytest.param('!match(event, "Refund*")', TRACK, True, id="not-match"),
    pytest.param('!match(properties.gone, "x*")', TRACK, False, id="not-match-missing"),
    pytest.param('match(properties.points, "1*")', TRACK, False, id="match-needs-a-string"),
    # and / or / parentheses
    pytest.param('type = "track" and event = "Order Completed"', TRACK, True, id="and-both"),
    pytest.param('type = "track" and event = "Signed Up"', TRACK, False, id="and-one"),
    pytest.param('event = "Signed Up" or event = "Order Completed"', TRACK, True, id="or-one"),
    pytest.param('event = "Signed Up" or event = "Logged In"', TRACK, False, id="or-none"),
    pytest.param(
        'type = "track" and userId = "u-1" and properties.total > 10', TRACK, True, id="and-chain"
    ),
    pytest.param(
        'type = "track" and (event = "Signed Up" or event = "Order Completed")',
        TRACK,
        True,
        id="and-with-or-group",
    ),
    pytest.param(
        '(type = "identify" or type = "track") and properties.total > 100',
        TRACK,
        False,
        id="or-group-and",
    ),
    pytest.param(
        '(type = "identify" and userId = "u-1") or event = "Order Completed"',
        TRACK,
        True,
        id="grouping-decides-and-first",
    ),
    pytest.param(
        'type = "identify" and (userId = "u-1" or event = "Order Completed")',
        TRACK,
        False,
        id="grouping-decides-or-first",
    ),
    pytest.param('((type = "track"))', TRACK, True, id="nested-parentheses"),
    pytest.param('type = "track"\n  and\tevent = "Order Completed"', TRACK, True, id="whitespace"),
    pytest.param('type="track"and event="Order Completed"', TRACK, True, id="no-spaces"),
]


@pytest.mark.parametrize(("trigger", "event", "expected"), MATCH_CASES)
def test_trigger_matches_as_segment_does(trigger: str, event: dict, expected: bool) -> None:
    """Each trigger evaluates against the event as Segment's subscription validator would."""
    assert parse_trigger(trigger).matches(event) is expected
    assert trigger_matches(trigger, event) is expected


INVALID_CASES = [
    pytest.param("", 1, "empty", id="empty"),
    pytest.param("   ", 4, "empty", id="blank"),
    pytest.param("type", 5, "a comparison operator", id="field-only"),
    pytest.param("type = ", 8, "a string in double quotes", id="missing-value"),
    pytest.param("type = track", 8, 'quote it: "track"', id="bare-word-value"),
    pytest.param("type = 'track'", 8, "double quotes", id="single-quotes"),
    pytest.param('type = "track', 8, "unexpected character", id="unterminated-string"),
    pytest.param('type == "track"', 7, "got '='", id="double-equals"),
    pytest.param('type === "track"', 7, "got '='", id="triple-equals"),
    pytest.param('foo = "x"', 1, "unknown field 'foo'", id="unknown-field"),
    pytest.param('properties = "x"', 11, "needs a field name", id="object-without-field"),
    pytest.param('event.name = "x"', 7, "has no sub-fields", id="scalar-with-sub-field"),
    pytest.param(
        'type = "track" and event = "A" or event = "B"', 32, "add parentheses", id="and-then-or"
    ),
    pytest.param(
        'type = "track" or event = "A" and event = "B"', 31, "add parentheses", id="or-then-and"
    ),
    pytest.param('(type = "track"', 16, "')'", id="unclosed-parenthesis"),
    pytest.param('type = "track")', 15, "the end of the trigger", id="extra-parenthesis"),
    pytest.param('type = "track" and', 19, "got the end of the trigger", id="dangling-and"),
    pytest.param('and type = "track"', 1, "needs a condition before it", id="leading-and"),
    pytest.param('type = "a" type = "b"', 12, "expected 'and', 'or'", id="missing-conjunction"),
    pytest.param("contains(event)", 15, "','", id="contains-one-argument"),
    pytest.param("contains(event, 5)", 17, "a string in double quotes", id="contains-number"),
    pytest.param('contains event, "x"', 10, "'('", id="contains-without-parenthesis"),
    pytest.param('!(type = "track")', 2, "contains(...) or match(...)", id="negated-group"),
    pytest.param('match(event, "[abc")', 14, "without a closing ']'", id="bad-glob"),
    pytest.param('match(event, "x\\")', 14, "lone", id="glob-trailing-backslash"),
    pytest.param("properties.total > true", 20, "compares numbers", id="order-with-boolean"),
    pytest.param("properties.total <= null", 21, "compares numbers", id="order-with-null"),
    pytest.param("properties.total = 1.", 21, "got '.'", id="number-dangling-point"),
    pytest.param('"track" = type', 1, "expected", id="value-first"),
    pytest.param('type ~ "track"', 6, "a comparison operator", id="unknown-operator"),
]


@pytest.mark.parametrize(("trigger", "column", "fragment"), INVALID_CASES)
def test_invalid_trigger_is_refused_with_position_and_expectation(
    trigger: str, column: int, fragment: str
) -> None:
    """A trigger that does not parse raises an error that points at the column and explains."""
    with pytest.raises(TriggerSyntaxError) as info:
        parse_trigger(trigger)
    error = info.value
    message = str(error)
    assert fragment in message
    assert error.column == column
    assert f"column {column}" in message
    assert message.splitlines()[-1].rstrip().endswith("^")


@pytest.mark.parametrize("trigger", [p.values[0] for p in INVALID_CASES])
def test_invalid_trigger_matches_nothing(trigger: str) -> None:
    """trigger_matches() is False for a trigger that does not parse, as Segment skips it."""
    assert trigger_matches(trigger, TRACK) is False


def test_syntax_error_is_a_value_error() -> None:
    """TriggerSyntaxError can be caught as ValueError by settings validation."""
    with pytest.raises(ValueError):
        parse_trigger("type =")


def test_syntax_error_on_a_later_line_names_the_line() -> None:
    """A multi-line trigger reports the line and column of the problem."""
    with pytest.raises(TriggerSyntaxError) as info:
        parse_trigger('type = "track"\nand foo = "x"')
    assert (info.value.line, info.value.column) == (2, 5)
    assert "line 2, column 5" in str(info.value)


def test_syntax_error_lists_what_was_expected() -> None:
    """The error carries the readable names of what the parser would have accepted."""
    with pytest.raises(TriggerSyntaxError) as info:
        parse_trigger("type =")
    assert "a string in double quotes" in info.value.expected
    assert "a number" in info.value.expected


def test_non_object_event_matches_nothing() -> None:
    """A payload that is not a JSON object never matches."""
    assert parse_trigger("userId = null").matches(["not", "an", "event"]) is False  # type: ignore[arg-type]


def test_parsed_trigger_keeps_its_text() -> None:
    """str(trigger) is the text it was parsed from."""
    assert str(parse_trigger('type = "track"')) == 'type = "track"'


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters='"*?[]\\', blacklist_categories=("Cs",)),
    max_size=8,
)


@given(value=JSON_SCALARS, literal=SAFE_TEXT)
def test_not_equals_is_the_negation_of_equals(value: object, literal: str) -> None:
    """For any value, present or missing, != is exactly the negation of =."""
    for event in ({"properties": {"x": value}}, {"properties": {}}):
        equal = trigger_matches(f'properties.x = "{literal}"', event)
        assert trigger_matches(f'properties.x != "{literal}"', event) is (not equal)


@given(value=st.text(max_size=12), prefix=SAFE_TEXT)
def test_prefix_glob_agrees_with_segment_starts_with(value: str, prefix: str) -> None:
    """match(x, "abc*") is Segment's starts_with("abc") for wildcard-free prefixes."""
    event = {"properties": {"x": value}}
    assert trigger_matches(f'match(properties.x, "{prefix}*")', event) is value.startswith(prefix)
    assert trigger_matches(f'match(properties.x, "*{prefix}")', event) is value.endswith(prefix)


@given(text=st.text(max_size=40))
def test_parser_only_ever_raises_trigger_syntax_error(text: str) -> None:
    """Arbitrary input either parses or raises TriggerSyntaxError, never anything else."""
    try:
        trigger = parse_trigger(text)
    except TriggerSyntaxError:
        return
    trigger.matches(TRACK)


@pytest.mark.parametrize(
    ("trigger", "event", "expected"),
    [
        ('userId = "123"', {"userId": 123}, True),
        ('userId != "123"', {"userId": 123}, False),
        ('userId = "true"', {"userId": True}, True),
        ('userId = "1.5"', {"userId": 1.5}, True),
        ('userId = "a,b"', {"userId": ["a", "b"]}, True),
        ('userId = "undefined"', {}, False),
        ('userId != "x"', {}, True),
        ('userId != "x"', {"userId": None}, True),
        ('type = "track" and userId = "7"', {"type": "track", "userId": 7}, True),
        ('type = "identify" or userId = "7"', {"type": "track", "userId": 7}, True),
    ],
)
def test_a_top_level_field_that_is_not_a_string_compares_as_string(
    trigger: str, event: dict, expected: bool
) -> None:
    """`field = "text"` compares String(field) also when the field holds another value (the
    matcher's quick answer covers only a string field)."""
    assert parse_trigger(trigger).matches(event) is expected
    assert trigger_matches(trigger, event) is expected
