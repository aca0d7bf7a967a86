"""Previewing a mapping: the event chosen, the request built, and why nothing matched."""

from __future__ import annotations

import orjson

from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.preview import (
    Candidate,
    antavo_request,
    preview_mapping,
    why_not,
)
from segment_sync.redaction import Redactor

ORDERS = Mapping(
    "Orders",
    "loyalty_event",
    'type = "track" and event = "Order Completed"',
    {"action": "purchase", "data": {"total": {"@path": "$.properties.total"}}},
)
ENDPOINT = "https://api.test.antavo.com"


def _track(message_id: str, event: str = "Order Completed", **properties: object) -> Candidate:
    payload = {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "userId": "c-1",
        "properties": properties,
    }
    return Candidate(f"buffer item {message_id}", payload)


def _preview(candidates: list[Candidate], mapping: Mapping = ORDERS, **kwargs: object):
    return preview_mapping(
        mapping,
        candidates,
        multi_accounts=False,
        endpoint=ENDPOINT,
        redactor=Redactor(["s3cret-key"]),
        **kwargs,
    )


def test_the_first_matching_candidate_is_used_not_a_newer_non_matching_one():
    newest_first = [_track("m-3", event="Viewed"), _track("m-2", total=7), _track("m-1", total=1)]
    preview = _preview(newest_first)
    assert preview.event is not None and preview.event.payload["messageId"] == "m-2"


def test_the_request_is_a_post_to_events_with_the_mapped_body():
    request = antavo_request(
        ORDERS,
        _track("m-1", total=7).payload,
        multi_accounts=False,
        endpoint=ENDPOINT,
        redactor=Redactor(),
    )
    assert (request.method, request.path, request.url) == (
        "POST",
        "/events",
        f"{ENDPOINT}/events",
    )
    assert orjson.loads(request.body) == {
        "customer": "c-1",
        "action": "purchase",
        "data": {"total": 7},
    }


def test_a_secret_inside_the_event_is_redacted_in_the_body():
    preview = _preview([_track("m-1", total="s3cret-key")])
    assert preview.request is not None
    assert "s3cret-key" not in preview.request.body and "[REDACTED]" in preview.request.body


def test_a_non_matching_event_is_explained_per_condition():
    identify = {"type": "identify", "messageId": "m-1", "userId": "c-1"}
    assert why_not(ORDERS.trigger, identify) == [
        "condition 'Event type is track': event type is identify",
        "condition 'Event name is Order Completed': event name is missing",
    ]


def test_only_the_failing_conditions_are_listed():
    viewed = _track("m-1", event="Viewed").payload
    assert why_not(ORDERS.trigger, viewed) == [
        "condition 'Event name is Order Completed': event name is Viewed"
    ]


def test_numeric_and_function_conditions_read_as_words():
    trigger = 'properties.total >= 10 and contains(properties.sku, "A")'
    lines = why_not(trigger, {"type": "track", "properties": {"total": 3, "sku": 5}})
    assert lines == [
        "condition 'properties.total is at least 10': properties.total is 3",
        "condition 'properties.sku contains \"A\"': properties.sku is 5 (not a string)",
    ]


def test_no_match_in_the_buffer_counts_each_condition_over_the_events_scanned():
    preview = _preview([_track("m-2", event="Viewed"), _track("m-1", event="Signed Up")])
    assert preview.request is None and preview.event is None
    assert "  condition 'Event name is Order Completed' failed for 2" in preview.reasons


def test_an_empty_buffer_says_so_and_points_at_event_files():
    preview = _preview([])
    assert preview.reasons == ["the webhook buffer holds no events; pass one with --event FILE"]


def test_a_missing_required_field_is_the_reason_there_is_no_request():
    anonymous = Candidate("file e.json", {"type": "track", "event": "Order Completed"})
    preview = _preview([anonymous])
    assert preview.request is None
    assert "missing the required field 'customer'" in preview.reasons[-1]


def test_an_external_customer_id_is_resolved_as_the_ingest_resolves_it():
    preview = _preview([_track("m-1", total=1)], customers=lambda ids: {"c-1": "antavo-9"})
    assert preview.request is not None
    assert orjson.loads(preview.request.body)["customer"] == "antavo-9"


def test_a_disabled_mapping_is_previewed_and_said_to_send_nothing():
    disabled = Mapping(ORDERS.name, ORDERS.action, ORDERS.trigger, ORDERS.fields, enabled=False)
    preview = _preview([_track("m-1", total=1)], mapping=disabled)
    assert preview.request is not None
    assert preview.reasons == ["the mapping is disabled (enabled: false): it sends nothing"]
