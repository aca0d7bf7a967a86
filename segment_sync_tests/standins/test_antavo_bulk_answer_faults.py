"""The Antavo stand-in's injected ambiguous bulk answers: events registered, answer incomplete."""

from __future__ import annotations

import orjson
import pytest

from segment_sync.standins import antavo as standin_module
from segment_sync_tests.standins.test_antavo_standin import event, post_signed, running


def test_a_one_short_answer_registers_every_event_but_lists_one_result_fewer() -> None:
    with running() as (standin, client):
        standin.configure(bulk_answer_faults=["one_short"])
        response = post_signed(
            client, "/events/bulk", {"events": [event(f"c{i}") for i in range(50)]}
        )
        again = post_signed(client, "/events/bulk", {"events": [event("c9"), event("c8")]})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 49 and len(standin.events) == 52
    assert len(again.json()["results"]) == 2  # a one-shot fault: the next answer is whole


def test_a_malformed_answer_registers_every_event_but_is_not_json() -> None:
    with running() as (standin, client):
        standin.configure(bulk_answer_faults=["malformed"])
        response = post_signed(client, "/events/bulk", {"events": [event("a"), event("b")]})
    assert response.status_code == 200 and len(standin.events) == 2
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_bulk_answer_faults_are_configured_over_http_and_checked() -> None:
    with running() as (standin, client):
        ok = client.post(
            "/_standin/config", json={"bulk_answer_faults": ["one_short", "malformed"]}
        )
        bad = client.post("/_standin/config", json={"bulk_answer_faults": ["garbled"]})
        config = client.get("/_standin/config").json()
        standin.reset()
    assert ok.status_code == 200 and config["bulk_answer_faults"] == ["one_short", "malformed"]
    assert bad.status_code == 400 and "one_short" in bad.json()["error"]["message"]
    assert standin.config()["bulk_answer_faults"] == []


def test_the_fault_is_labelled_as_injected_in_the_stand_in() -> None:
    assert "INJECTED FAULT, not Antavo's documented behaviour" in " ".join(
        standin_module.__doc__.split()
    )
