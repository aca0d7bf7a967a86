"""Planning an inbound dry run: the requests an ingest would make, computed without sending."""

from __future__ import annotations

import orjson

from segment_sync.antavo.client import request_for
from segment_sync.inbound.dry_run import plan_inbound
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import build_antavo_event
from segment_sync.redaction import Redactor

PROFILES = Mapping("Profiles", "profile_update", 'type = "identify"')
ORDERS = Mapping("Orders", "loyalty_event", 'type = "track"', {"action": "purchase"})


def _identify(n: int, **traits: object) -> dict:
    return {"type": "identify", "messageId": f"m-{n}", "userId": f"c-{n}", "traits": traits}


def _plan(payloads: list[dict], mappings=(PROFILES, ORDERS), secrets=()):
    return plan_inbound(payloads, list(mappings), multi_accounts=False, redactor=Redactor(secrets))


def test_events_are_counted_per_antavo_action():
    track = {"type": "track", "messageId": "t", "userId": "c", "event": "Order"}
    plan = _plan([_identify(1), _identify(2), track])
    assert plan.events_by_action == {"profile": 2, "purchase": 1}


def test_fifty_events_make_one_bulk_request_and_fifty_one_make_two():
    assert _plan([_identify(n) for n in range(50)]).requests == 1
    assert _plan([_identify(n) for n in range(51)]).requests == 2


def test_bytes_are_those_of_the_request_bodies_the_client_would_post():
    payloads = [_identify(1, email="a@b"), _identify(2, email="c@d")]
    events = [build_antavo_event(PROFILES, p, multi_accounts=False) for p in payloads]
    _, body = request_for([orjson.dumps(e) for e in events])
    assert _plan(payloads).bytes == len(body)


def test_at_most_three_sample_bodies_are_kept():
    plan = _plan([_identify(n) for n in range(200)])
    assert plan.requests == 4 and len(plan.samples) == 3


def test_a_secret_in_an_event_is_redacted_in_the_samples():
    plan = _plan([_identify(1, email="key-0123456789")], secrets=["key-0123456789"])
    assert "key-0123456789" not in plan.samples[0] and "[REDACTED]" in plan.samples[0]


def test_an_event_no_trigger_matches_is_counted_and_not_sent():
    plan = _plan([{"type": "page", "messageId": "p", "userId": "c"}])
    assert (plan.no_match, plan.requests, plan.events) == (1, 0, 0)


def test_an_event_missing_a_required_field_would_fail_with_its_reason():
    plan = _plan([{"type": "identify", "messageId": "m", "traits": {}}])
    assert (plan.failed, plan.requests) == (1, 0)
    assert any("required field 'customer'" in error for error in plan.errors)
