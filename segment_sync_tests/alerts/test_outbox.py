"""Which alerts a tick posts and the cursor it leaves: each once, a refused one kept, bounded."""

from __future__ import annotations

import pytest

from segment_sync.alerts.message import AlertKind, Failure
from segment_sync.alerts.outbox import AlertCursor, AlertNotDelivered, Pending, deliver


def _failure(n: int) -> Failure:
    return Failure(AlertKind.RUN_FAILURE, f"job-{n}", "boom", f"run-{n}")


class Webhook:
    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.sent: list[str] = []

    def __call__(self, failure: Failure) -> None:
        if self.refuse:
            self.refuse -= 1
            raise AlertNotDelivered("HTTP 500")
        self.sent.append(failure.run_id)


START = AlertCursor(0)


def _deliver(pending, cursor=START, send=None, **kw):
    limits = {"max_alerts": 10, "max_failed_ticks": 3, "budget_s": 60.0} | kw
    return deliver(pending, cursor, send or Webhook(), **limits)


def test_every_pending_failure_is_posted_in_order_and_the_cursor_passes_them():
    webhook = Webhook()
    outcome = _deliver([Pending(3, _failure(3)), Pending(5, None), Pending(8, _failure(8))],
                       send=webhook)  # fmt: skip
    assert webhook.sent == ["run-3", "run-8"] and outcome.cursor == AlertCursor(8)
    assert outcome.summary() == "posted 2 alert(s): job-3 (run run-3), job-8 (run run-8)"


def test_a_refused_alert_keeps_the_cursor_in_front_of_it_and_stops():
    webhook = Webhook(refuse=1)
    pending = [Pending(3, None), Pending(4, _failure(4)), Pending(6, _failure(6))]
    outcome = _deliver(pending, send=webhook)
    assert webhook.sent == [] and outcome.cursor == AlertCursor(3, failed_ticks=1)
    assert "not delivered (1 of 3 tick(s)); the next tick tries again: HTTP 500" in outcome.problem
    again = _deliver(pending[1:], outcome.cursor, webhook)
    assert webhook.sent == ["run-4", "run-6"] and again.cursor == AlertCursor(6)


def test_an_alert_refused_on_max_failed_ticks_is_given_up_loudly():
    outcome = _deliver([Pending(4, _failure(4))], AlertCursor(3, failed_ticks=2), Webhook(9))
    assert outcome.cursor == AlertCursor(4) and outcome.gave_up == _failure(4)
    assert outcome.problem.startswith("gave up on the alert for job-4 (run run-4) after 3 tick(s)")


def test_no_more_than_max_alerts_are_posted_per_tick():
    webhook = Webhook()
    outcome = _deliver([Pending(i, _failure(i)) for i in range(1, 6)], send=webhook, max_alerts=2)
    assert webhook.sent == ["run-1", "run-2"] and outcome.cursor == AlertCursor(2)


@pytest.mark.parametrize("text", [None, "", "{}", "not json", '{"record_id": 3}', "[1]"])
def test_a_cursor_this_code_did_not_write_reads_as_none(text):
    assert AlertCursor.from_json(text) is None


def test_the_cursor_survives_its_json():
    cursor = AlertCursor(17, failed_ticks=2)
    assert AlertCursor.from_json(cursor.to_json()) == cursor
