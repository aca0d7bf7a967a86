"""Inbound acceptance: signed webhooks -> receiver -> buffer -> sensor -> job -> Antavo -> logs."""

from __future__ import annotations

import dagster as dg
import httpx
import orjson
import pytest
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.definitions import build_definitions
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.ingest_result import AntavoFaultError
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import js_stringify, sign
from segment_sync.logs.store import LogWriter
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.conftest import ANTAVO_KEY, ANTAVO_SECRET, WEBHOOK_SECRET, WRITE_KEY

ORDER_MAPPING = {
    "name": "Order completed",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {
        "action": {"@literal": "checkout"},
        "data": {"total": {"@path": "$.properties.total"}},
    },
}
PROFILE_MAPPING = {"name": "Profile updates", "action": "profile_update"}

IDENTIFY = {
    "type": "identify",
    "messageId": "in-identify-1",
    "userId": "c-1",
    "traits": {"first_name": "Anna", "last_name": "Kovács", "email": "anna@example.com",
               "birthday": "1988-07-14", "plan": "gold"},
}  # fmt: skip
ORDER = {
    "type": "track",
    "messageId": "in-order-1",
    "userId": "c-2",
    "event": "Order Completed",
    "properties": {"total": 59.5},
}
WEBHOOK_TOKEN = "end-to-end-bearer-token"
PAGE = {"type": "page", "messageId": "in-page-1", "userId": "c-3", "name": "Home"}


def post(url: str, payload: object) -> httpx.Response:
    body = orjson.dumps(payload)
    first = payload[0] if isinstance(payload, list) else payload
    signature = sign(js_stringify(first) if isinstance(payload, list) else body, WEBHOOK_SECRET)
    return httpx.post(
        f"{url}/segment",
        content=body,
        headers={
            "X-Signature": signature,
            "Content-Type": "application/json",
            "Authorization": f"Bearer {WEBHOOK_TOKEN}",  # batches need the token
        },
    )


@pytest.fixture
def inbound(write_settings, antavo_standin, segment_standin, tmp_path):
    path = write_settings(
        outbound={"base_url": segment_standin.url, "event_sync": ["checkout", "point_add"],
                  "customer_fields_sync": ["first_name", "email"]},
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
                 "mappings": [ORDER_MAPPING, PROFILE_MAPPING], "max_attempts": 2, "max_retries": 2},
    )  # fmt: skip
    settings = load_settings(path)
    buffer = InboundBuffer(settings.inbound.buffer_url)
    app = create_receiver_app(buffer, WEBHOOK_SECRET, webhook_token=WEBHOOK_TOKEN)
    with serve_in_thread(app) as receiver_url:
        yield path, settings, buffer, receiver_url


def ingest(settings, run_id: str = "run-1"):
    return factory.inbound_ingest(
        settings, ANTAVO_KEY, ANTAVO_SECRET, LogWriter(settings.logs.dir), backoff_base_s=0.01
    ).run(run_id)


def test_signed_webhooks_reach_antavo_and_the_loyalty_store_through_a_sensor_run(
    inbound, antavo_standin
):
    path, settings, buffer, receiver = inbound
    assert post(receiver, IDENTIFY).json() == {"stored": 1, "duplicates": 0}
    assert post(receiver, [ORDER, PAGE]).json() == {"stored": 2, "duplicates": 0}
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        sensor = defs.resolve_sensor_def("inbound_buffer_sensor")
        context = dg.build_sensor_context(
            instance=instance, definitions=defs, resources=defs.resources
        )
        request = sensor(context)
        run = defs.resolve_job_def("inbound_ingest_job").execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
    assert run.success
    registered = {e["action"]: e for e in antavo_standin.events}
    assert {k: registered["profile"][k] for k in ("customer", "action", "data")} == {
        "customer": "c-1",
        "action": "profile",
        "data": {
            "first_name": "Anna",
            "last_name": "Kovács",
            "email": "anna@example.com",
            "birth_date": "1988-07-14",
        },
    }
    assert registered["checkout"]["customer"] == "c-2" and registered["checkout"]["data"] == {
        "total": 59.5
    }
    assert buffer.counts() == {"done": 3} or buffer.counts().get("done") == 3

    store = LoyaltyStore(settings.loyalty_store.url)
    assert [(e.customer_id, e.action, e.origin) for e in store.events_after(0, 10**9, 100)] == [
        ("c-2", "checkout", "segment")
    ]
    db = connect(settings.logs.dir)
    items = dict(db.execute("SELECT message_id, outcome FROM inbound_items").fetchall())
    assert items == {"in-identify-1": "done", "in-order-1": "done", "in-page-1": "no_match"}
    ids = {
        r[0]
        for r in db.execute(
            "SELECT antavo_event_id FROM inbound_items WHERE outcome = 'done'"
        ).fetchall()
    }
    assert ids == {e["id"] for e in antavo_standin.events}
    log = db.execute(
        "SELECT message_id, event_type, status, status_code, error FROM inbound_log "
        "ORDER BY message_id"
    ).fetchall()
    assert log == [
        ("in-identify-1", "identify", "success", 200, None),
        ("in-order-1", "track", "success", 200, None),
        ("in-page-1", "page", "skipped", None, "no enabled mapping's trigger matched this event"),
    ]
    assert db.execute("SELECT trigger, status FROM sync_runs").fetchall() == [("sensor", "success")]


def test_event_from_segment_is_not_sent_back_out(inbound, segment_standin):
    path, settings, buffer, receiver = inbound
    post(receiver, [ORDER, IDENTIFY])
    assert ingest(settings).ok
    result = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir)).run(
        Stream.EVENTS, "out-1"
    )
    profiles = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir)).run(
        Stream.PROFILES, "out-2"
    )
    assert result.counts.skipped == 1 and profiles.counts.skipped == 1
    assert segment_standin.messages == []
    reasons = (
        connect(settings.logs.dir)
        .execute("SELECT DISTINCT error FROM outbound_messages")
        .fetchall()
    )
    assert reasons == [("came in from Segment through the inbound path; not echoed back",)]


def test_event_without_user_id_is_a_failed_item_with_a_readable_error(inbound):
    _, settings, buffer, receiver = inbound
    post(receiver, {**ORDER, "userId": None, "anonymousId": "anon-1", "messageId": "no-user"})
    result = ingest(settings)
    assert not result.ok and result.counts.failed == 1
    record = buffer.get_by_message_id("no-user")
    assert record.status == "failed"
    assert "missing the required field 'customer'" in record.last_error
    error = (
        connect(settings.logs.dir)
        .execute("SELECT error FROM inbound_items WHERE message_id = 'no-user'")
        .fetchone()[0]
    )
    assert "customer" in error


def test_customer_not_found_is_a_failed_item_shown_in_the_inbound_log(inbound, antavo_standin):
    _, settings, buffer, receiver = inbound
    antavo_standin.configure(known_customers={"c-2"})
    post(receiver, [ORDER, {**ORDER, "messageId": "ghost", "userId": "ghost-9"}])
    result = ingest(settings)
    assert result.counts.failed == 1 and result.counts.done == 1
    assert buffer.get_by_message_id("ghost").status == "failed"
    assert buffer.get_by_message_id("in-order-1").status == "done"
    db = connect(settings.logs.dir)
    errors = " ".join(
        r[0] or ""
        for r in db.execute("SELECT error FROM inbound_items WHERE message_id = 'ghost'").fetchall()
    )
    assert "not found" in errors.lower()
    bodies = " ".join(
        r[0] or "" for r in db.execute("SELECT response_body FROM inbound_log").fetchall()
    )
    assert "not found" in bodies.lower()


def test_server_errors_are_retried_and_succeed(inbound, antavo_standin):
    _, settings, buffer, receiver = inbound
    antavo_standin.configure(fail_next=[503, 503])
    post(receiver, ORDER)
    result = ingest(settings)
    assert result.ok and buffer.get_by_message_id("in-order-1").status == "done"
    codes = [
        r[0]
        for r in connect(settings.logs.dir)
        .execute("SELECT status_code FROM inbound_log ORDER BY timestamp")
        .fetchall()
    ]
    assert codes == [503, 503, 200]


def test_an_antavo_outage_leaves_the_item_pending_with_no_attempt_used(inbound, antavo_standin):
    _, settings, buffer, receiver = inbound
    antavo_standin.configure(error_rate=1.0)
    post(receiver, ORDER)
    for run in ("run-a", "run-b", "run-c"):  # more runs than max_attempts (2)
        with pytest.raises(AntavoFaultError, match="Antavo is unavailable"):
            ingest(settings, run)
    record = buffer.get_by_message_id("in-order-1")
    assert (record.status, record.attempts) == ("pending", 0)


def test_secrets_never_reach_the_logs(inbound, antavo_standin):
    _, settings, _, receiver = inbound
    antavo_standin.configure(known_customers={"nobody"})
    post(receiver, [ORDER, IDENTIFY])
    ingest(settings)
    db = connect(settings.logs.dir)
    log_rows = db.execute("SELECT * FROM inbound_log").fetchall()
    item_rows = db.execute("SELECT * FROM inbound_items").fetchall()
    assert len(log_rows) >= 1 and len(item_rows) == 2  # the dump holds real rows
    dumped = str(log_rows) + str(item_rows)
    assert "customer" in dumped  # request and response bodies are in it
    for secret in (ANTAVO_KEY, ANTAVO_SECRET, WEBHOOK_SECRET, "ANTAVO-HMAC-SHA256"):
        assert secret not in dumped


def test_a_secret_the_mapping_puts_in_the_customer_never_reaches_the_logs(inbound, antavo_standin):
    """A secret pasted into a userId: the request and answer bodies were redacted, the mapped
    customer and action columns of inbound_log and inbound_items were not."""
    _, settings, _, receiver = inbound
    leaked = f"c-{ANTAVO_SECRET}"
    antavo_standin.configure(known_customers={leaked})
    post(receiver, [{**ORDER, "messageId": "leak-1", "userId": leaked}, IDENTIFY])
    ingest(settings)
    db = connect(settings.logs.dir)
    customers = db.execute(
        "SELECT customer_id FROM inbound_log UNION ALL SELECT customer_id FROM inbound_items"
    ).fetchall()
    assert ("c-[REDACTED]",) in customers
    dumped = str(db.execute("SELECT * FROM inbound_log").fetchall())
    dumped += str(db.execute("SELECT * FROM inbound_items").fetchall())
    assert ANTAVO_SECRET not in dumped


def test_inbound_log_has_a_row_per_event_with_its_own_status_and_event_id(inbound, antavo_standin):
    _, settings, _, receiver = inbound
    antavo_standin.configure(known_customers={"c-2"})
    post(receiver, [ORDER, {**ORDER, "messageId": "ghost", "userId": "ghost-9"}])
    ingest(settings)
    db = connect(settings.logs.dir)
    rows = db.execute(
        "SELECT customer_id, action, status, event_id, error, identifier FROM inbound_log "
        "ORDER BY customer_id"
    ).fetchall()
    ok, ghost = rows
    assert ok[:3] == ("c-2", "checkout", "success") and ok[4] is None
    assert ok[3] == antavo_standin.events[0]["id"]
    assert ghost[:4] == ("ghost-9", "checkout", "error", None) and "not found" in ghost[4].lower()
    assert ok[5] == ghost[5]  # one bulk request carried both


def test_a_bulk_requests_rows_carry_each_events_own_status_code(inbound, antavo_standin):
    _, settings, _, receiver = inbound
    antavo_standin.configure(known_customers={"c-2"})
    post(receiver, [ORDER, {**ORDER, "messageId": "ghost", "userId": "ghost-9"}])
    ingest(settings)
    rows = (
        connect(settings.logs.dir)
        .execute(
            "SELECT message_id, status, status_code, request_status_code FROM inbound_log "
            "ORDER BY message_id"
        )
        .fetchall()
    )
    # Antavo answers the bulk request 200 and the unknown customer NotFoundException (404).
    assert rows == [("ghost", "error", 404, 200), ("in-order-1", "success", 200, 200)]


def test_mapping_failures_and_unmatched_events_are_rows_of_the_inbound_log(inbound):
    _, settings, _, receiver = inbound
    post(receiver, [{**ORDER, "userId": None, "anonymousId": "anon-1", "messageId": "no-user"}])
    post(receiver, PAGE)
    ingest(settings)
    result = CliRunner().invoke(
        main, ["logs", "inbound", "--format", "json", "--filter", "Status is in error, skipped"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["message_id"]: row for row in orjson.loads(result.output)}
    assert set(rows) == {"no-user", "in-page-1"}
    failed, skipped = rows["no-user"], rows["in-page-1"]
    assert (failed["status"], failed["mapping_name"], failed["identifier"]) == (
        "error",
        "Order completed",
        None,
    )
    assert "missing the required field 'customer'" in failed["error"]
    assert (skipped["status"], skipped["customer_id"], skipped["error"]) == (
        "skipped",
        "c-3",
        "no enabled mapping's trigger matched this event",
    )


def test_event_type_filter_matches_each_event_not_its_bulk_request(inbound):
    _, settings, _, receiver = inbound
    post(receiver, [ORDER, IDENTIFY])  # one bulk request carries both
    ingest(settings)
    result = CliRunner().invoke(
        main, ["logs", "inbound", "--format", "json", "--filter", "Event type is in identify"]
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.output)
    assert [(r["message_id"], r["action"]) for r in rows] == [("in-identify-1", "profile")]


def test_daily_summary_counts_an_unmatched_event_neither_as_a_message_nor_an_error(inbound):
    _, settings, _, receiver = inbound
    post(receiver, [ORDER, PAGE])  # the page event matches no mapping
    ingest(settings)
    rows = (
        connect(settings.logs.dir)
        .execute(
            "SELECT sum(requests), sum(messages), sum(delivered), sum(failed), sum(errors) "
            "FROM daily_summary WHERE direction = 'inbound'"
        )
        .fetchone()
    )
    assert tuple(int(v) for v in rows) == (1, 1, 1, 0, 0)


def test_with_external_customer_ids_both_directions_speak_the_external_id(
    write_settings, antavo_standin, segment_standin, tmp_path
):
    from segment_sync.loyalty.records import NewEvent

    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        outbound={"base_url": segment_standin.url, "event_sync": ["point_add"]},
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "mappings": [ORDER_MAPPING]},
    )  # fmt: skip
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent("c-7", "point_add", {"points": 5}, external_customer_id="ext-7")])
    antavo_standin.configure(known_customers={"c-7"})  # Antavo knows only its own ID
    buffer = InboundBuffer(settings.inbound.buffer_url)
    buffer.add_many(
        [{**ORDER, "userId": "ext-7"}, {**ORDER, "messageId": "ghost", "userId": "ext-404"}]
    )

    out = factory.outbound_sync(settings, WRITE_KEY, LogWriter(settings.logs.dir))
    assert out.run(Stream.EVENTS, "out-1").ok
    assert [m["userId"] for m in segment_standin.messages] == ["ext-7"]

    result = ingest(settings)
    assert (result.counts.done, result.counts.failed) == (1, 1)
    assert [e["customer"] for e in antavo_standin.events] == ["c-7"]
    assert buffer.get_by_message_id("ghost").status == "failed"
    (error,) = (
        connect(settings.logs.dir)
        .execute("SELECT error FROM inbound_log WHERE message_id = 'ghost' AND status = 'error'")
        .fetchone()
    )
    assert "external_customer_id 'ext-404'" in error
