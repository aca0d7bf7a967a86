"""Bad input gets the right answer: 400 for what the buffer cannot store, 415, exact payload text."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import derived_message_id
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import sign
from segment_sync_tests.inbound.receiver_harness import SECRET, TOKEN, body, event, serve_receiver

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def buffer(request, tmp_path: Path) -> Iterator[InboundBuffer]:
    """An empty buffer on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbound.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    buf = InboundBuffer(url)
    yield buf
    buf.close()


@pytest.fixture
def client(buffer: InboundBuffer) -> Iterator[httpx.Client]:
    """A client of a receiver with a secret and a token (sent by the client)."""
    app = create_receiver_app(buffer, SECRET, webhook_token=TOKEN)
    with serve_receiver(app) as (host, port):
        c = httpx.Client(base_url=f"http://{host}:{port}", headers=AUTH, timeout=10)
        with c:
            yield c


def _post(client: httpx.Client, payload: bytes, first: bytes | None = None, **headers):
    headers.setdefault("Content-Type", "application/json")
    headers["X-Signature"] = sign(first if first is not None else payload, SECRET)
    return client.post("/segment", content=payload, headers=headers)


@pytest.mark.parametrize("shape", ["event", "batch"])
@pytest.mark.parametrize(
    ("message_id", "problem"),
    [
        ("msg\u00002", "contains a NUL character"),
        ("m" * 5000, "is longer than 1000 bytes"),
        ("sha1:" + "0" * 40, "kept for ids derived from content"),
    ],
    ids=["NUL", "5000 characters", "a derived id's prefix"],
)
def test_a_message_id_the_buffer_cannot_store_is_stored_under_the_id_derived_from_the_event(
    client: httpx.Client,
    buffer: InboundBuffer,
    caplog: pytest.LogCaptureFixture,
    shape: str,
    message_id: str,
    problem: str,
) -> None:
    """Segment does not resend a refused request: a 400 lost the event (and its batch)."""
    bad = event(2, messageId=message_id)
    with caplog.at_level(logging.WARNING, logger="segment_sync.inbound.receiver"):
        if shape == "event":
            response = _post(client, body(bad))
        else:
            response = _post(client, body([event(1), bad]), body(event(1)))
    assert response.status_code == 200
    stored = buffer.get_by_message_id(derived_message_id(bad))
    assert stored is not None and stored.payload["messageId"] == message_id
    assert buffer.max_id() == (1 if shape == "event" else 2)
    assert problem in caplog.text and "derived from their content" in caplog.text
    assert derived_message_id(bad) in caplog.text  # what the inbound logs show for it
    again = _post(client, body(bad))  # Segment's retry of the same event: stored once
    assert again.json() == {"stored": 0, "duplicates": 1}


def test_batch_items_that_are_no_objects_are_stored_beside_the_events(
    client: httpx.Client, buffer: InboundBuffer
) -> None:
    """The ingest fails each one alone (test_poisoned_items); a 400 lost the events beside them."""
    response = _post(client, body([event(1), 5, None, "text", event(2)]), body(event(1)))
    assert response.status_code == 200 and response.json()["stored"] == 5
    faults = sorted(r.fault for r in buffer.items() if r.fault)
    assert len(faults) == 3 and all("expected one Segment event" in f for f in faults)
    assert [f.rsplit("got ", 1)[1] for f in faults] == ["int", "null", "str"]


def test_a_store_failure_logs_no_payload_data(
    client: httpx.Client, buffer: InboundBuffer, caplog: pytest.LogCaptureFixture
) -> None:
    with buffer.engine.begin() as conn:  # a real database error on the next insert
        conn.execute(sa.text("DROP TABLE inbound_buffer"))
    marker = "customer-secret-address-42"
    with caplog.at_level(logging.DEBUG):
        response = _post(client, body(event(1, messageId=f"id-{marker}", traits={"a": marker})))
    assert response.status_code == 503
    assert caplog.records, "the failure was not logged"
    assert marker not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_gzip_body_with_trailing_bytes_is_400(client: httpx.Client, buffer: InboundBuffer) -> None:
    payload = body(event(1))
    response = _post(
        client, gzip.compress(payload) + b"trailing", payload, **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 400
    assert "after the end" in response.json()["error"]
    assert buffer.max_id() == 0


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_non_json_content_type_is_415(
    client: httpx.Client, buffer: InboundBuffer, content_type: str
) -> None:
    response = _post(client, body(event(1)), **{"Content-Type": content_type})
    assert response.status_code == 415
    assert buffer.max_id() == 0


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.segment+json", None]
)
def test_json_content_types_and_a_missing_one_are_accepted(
    client: httpx.Client, buffer: InboundBuffer, content_type: str | None
) -> None:
    payload = body(event(1))
    headers = {"X-Signature": sign(payload, SECRET)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post("/segment", content=payload, headers=headers)
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1"}


def _js(text: str) -> bytes:
    """What Segment signs for a batch: JSON.stringify of its first event."""
    return body(orjson.loads(text))


def _stored_text(buffer: InboundBuffer, message_id: str) -> str:
    with buffer.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT payload FROM inbound_buffer WHERE message_id = :m"), {"m": message_id}
        ).scalar_one()


@pytest.mark.parametrize("shape", ["event", "batch"])
def test_big_integers_are_stored_with_their_exact_digits(
    client: httpx.Client, buffer: InboundBuffer, shape: str
) -> None:
    big = "123456789012345678901234567890"  # > 2**64: a float if re-serialised
    texts = [f'{{"type":"track","messageId":"msg-{n}","properties":{{"n":{big}}}}}' for n in (1, 2)]
    if shape == "event":
        response = _post(client, texts[0].encode())
    else:
        response = _post(client, f"[{texts[0]},{texts[1]}]".encode(), _js(texts[0]))
    assert response.status_code == 200, response.text
    assert big in _stored_text(buffer, "msg-1")
    if shape == "batch":
        assert big in _stored_text(buffer, "msg-2")


def test_batch_events_are_stored_as_the_text_received(
    client: httpx.Client, buffer: InboundBuffer
) -> None:
    first = '{"type":"track","messageId":"msg-1","properties":{"x":1.50}}'
    second = '{ "type": "track", "messageId": "msg-2", "properties": {"city": "Z\\u00fcrich"} }'
    payload = f"[ {first} ,\n {second}\n]".encode()
    assert _post(client, payload, _js(first)).status_code == 200
    assert _stored_text(buffer, "msg-1") == first
    assert _stored_text(buffer, "msg-2") == second
