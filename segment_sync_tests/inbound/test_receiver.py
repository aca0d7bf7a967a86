"""The webhook receiver over real HTTP on loopback, storing into a real SQLite buffer."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import Row
from segment_sync.inbound.receiver import create_receiver_app, run_receiver
from segment_sync.inbound.receiver_writer import GroupCommitWriter
from segment_sync.inbound.signature import js_stringify, sign, verify
from segment_sync.standins.server import serve_in_thread
from segment_sync_tests.inbound.receiver_harness import SECRET, TOKEN
from segment_sync_tests.inbound.receiver_harness import body as _body
from segment_sync_tests.inbound.receiver_harness import event as _event


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[InboundBuffer]:
    """An empty SQLite buffer."""
    buf = InboundBuffer(f"sqlite:///{tmp_path / 'inbound.db'}")
    yield buf
    buf.close()


@pytest.fixture
def signed(buffer: InboundBuffer) -> Iterator[httpx.Client]:
    """A client for a receiver that requires signatures and a bearer token (which it sends)."""
    app = create_receiver_app(buffer, SECRET, max_body_bytes=64 * 1024, webhook_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=10, headers=auth) as client,
    ):
        yield client
    app.state.writer.close()


@pytest.fixture
def unsigned(buffer: InboundBuffer) -> Iterator[httpx.Client]:
    """A client for a receiver started without a secret (insecure)."""
    app = create_receiver_app(buffer, None, max_body_bytes=64 * 1024)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client
    app.state.writer.close()


def _post(
    client: httpx.Client, body: bytes, signature: str | None = None, **headers
) -> httpx.Response:
    if signature is not None:
        headers["X-Signature"] = signature
    headers.setdefault("Content-Type", "application/json")
    return client.post("/segment", content=body, headers=headers)


# -- storing ------------------------------------------------------------------------------------


def test_stores_a_single_event_exactly_as_received(
    signed: httpx.Client, buffer: InboundBuffer
) -> None:
    body = _body(_event(1))
    response = _post(signed, body, sign(body, SECRET))
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0}
    record = buffer.get_by_message_id("msg-1")
    assert record.payload == _event(1)
    assert record.status == "pending"


def test_stores_a_batch(signed: httpx.Client, buffer: InboundBuffer) -> None:
    batch = [_event(n) for n in range(50)]
    response = _post(signed, _body(batch), sign(_body(batch[0]), SECRET))
    assert response.status_code == 200
    assert response.json() == {"stored": 50, "duplicates": 0}
    assert [r.payload for r in buffer.items()] == batch


def test_stores_a_duplicate_message_id_once(signed: httpx.Client, buffer: InboundBuffer) -> None:
    body = _body(_event(1))
    assert _post(signed, body, sign(body, SECRET)).json() == {"stored": 1, "duplicates": 0}
    assert _post(signed, body, sign(body, SECRET)).json() == {"stored": 0, "duplicates": 1}
    batch = [_event(1), _event(2), _event(2)]
    response = _post(signed, _body(batch), sign(_body(batch[0]), SECRET))
    assert response.json() == {"stored": 1, "duplicates": 2}
    assert buffer.message_ids() == {"msg-1", "msg-2"}


def test_accepts_a_gzip_body(signed: httpx.Client, buffer: InboundBuffer) -> None:
    body = _body(_event(1))
    response = _post(
        signed, gzip.compress(body), sign(body, SECRET), **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1"}


def test_concurrent_requests_are_each_answered_with_their_own_counts(
    unsigned: httpx.Client, buffer: InboundBuffer
) -> None:
    base = str(unsigned.base_url)

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            return await asyncio.gather(
                *(client.post("/segment", content=_body(_event(n % 100))) for n in range(200))
            )

    responses = asyncio.run(fire())
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["stored"] for r in responses) == 100
    assert sum(r.json()["duplicates"] for r in responses) == 100
    assert len(buffer.message_ids()) == 100


# -- rejecting ----------------------------------------------------------------------------------


def test_bad_json_is_400_and_stores_nothing(signed: httpx.Client, buffer: InboundBuffer) -> None:
    body = b'{"type": "track", "messageId": '
    response = _post(signed, body, sign(body, SECRET))
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert buffer.max_id() == 0


def test_empty_array_is_400(signed: httpx.Client, buffer: InboundBuffer) -> None:
    response = _post(signed, b"[]", sign(b"[]", SECRET))
    assert response.status_code == 400
    assert "empty" in response.json()["error"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_oversize_body_is_413_and_stores_nothing(
    signed: httpx.Client, buffer: InboundBuffer, framing: str
) -> None:
    batch = [_event(n, properties={"pad": "x" * 1000}) for n in range(100)]
    body = _body(batch)
    assert len(body) > 64 * 1024
    headers = {"X-Signature": sign(_body(batch[0]), SECRET)}
    if framing == "chunked":
        chunks = [body[i : i + 8192] for i in range(0, len(body), 8192)]
        response = signed.post("/segment", content=iter(chunks), headers=headers)
    else:
        response = signed.post("/segment", content=body, headers=headers)
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["error"]
    assert buffer.max_id() == 0


def test_gzip_bomb_is_413_and_stores_nothing(signed: httpx.Client, buffer: InboundBuffer) -> None:
    batch = [_event(n, properties={"pad": "x" * 100_000}) for n in range(3)]
    compressed = gzip.compress(_body(batch))
    assert len(compressed) < 64 * 1024
    response = _post(
        signed, compressed, sign(_body(batch[0]), SECRET), **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert buffer.max_id() == 0


def test_missing_signature_is_401_and_stores_nothing(
    signed: httpx.Client, buffer: InboundBuffer
) -> None:
    response = _post(signed, _body(_event(1)))
    assert response.status_code == 401
    assert "X-Signature" in response.json()["error"]
    assert buffer.max_id() == 0


def test_wrong_signature_is_401_and_stores_nothing(
    signed: httpx.Client, buffer: InboundBuffer
) -> None:
    body = _body(_event(1))
    response = _post(signed, body, sign(body, "another-secret"))
    assert response.status_code == 401
    assert "does not match" in response.json()["error"]
    assert buffer.max_id() == 0


def test_batch_signed_over_its_first_event_is_accepted(
    signed: httpx.Client, buffer: InboundBuffer
) -> None:
    batch = [_event(1), _event(2)]
    whole_body_signature = sign(_body(batch), SECRET)
    assert _post(signed, _body(batch), whole_body_signature).status_code == 401
    response = _post(signed, _body(batch), sign(_body(batch[0]), SECRET))
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1", "msg-2"}


def test_object_reserialised_by_a_proxy_is_still_accepted(
    signed: httpx.Client, buffer: InboundBuffer
) -> None:
    event = _event(1)
    pretty = json.dumps(event, indent=2).encode()
    response = _post(signed, pretty, sign(_body(event), SECRET))
    assert response.status_code == 200
    assert buffer.get_by_message_id("msg-1").payload == event


def test_signature_and_secret_never_appear_in_a_response(signed: httpx.Client) -> None:
    body = _body(_event(1))
    wrong = sign(body, "another-secret")
    right = sign(body, SECRET)
    responses = [
        _post(signed, body, wrong),
        _post(signed, b"{not json", wrong),
        _post(signed, body, right),
    ]
    for response in responses:
        text = response.text + str(response.headers)
        assert wrong not in text and right not in text and SECRET not in text


def test_unsigned_requests_are_accepted_only_without_a_secret(
    unsigned: httpx.Client, buffer: InboundBuffer
) -> None:
    response = _post(unsigned, _body(_event(1)))
    assert response.status_code == 200
    assert buffer.message_ids() == {"msg-1"}


# -- health and startup ------------------------------------------------------------------------


def test_healthz_reports_ok_and_pending_count(signed: httpx.Client, buffer: InboundBuffer) -> None:
    buffer.add_many([_event(1), _event(2)])
    response = signed.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "pending": 2}


@pytest.mark.parametrize("secret", [None, ""])
def test_run_receiver_refuses_to_start_without_a_secret_unless_insecure(
    tmp_path: Path, secret: str | None
) -> None:
    with pytest.raises(SystemExit, match="SEGMENT_WEBHOOK_SECRET.*--insecure"):
        run_receiver(f"sqlite:///{tmp_path / 'b.db'}", secret, "127.0.0.1", 0, False, 1024)


# -- group commit ------------------------------------------------------------------------------


class _PoisonedBuffer(InboundBuffer):
    """A buffer whose store fails whenever a group holds the message id 'poison'."""

    def add_row_groups(self, groups: list[list[Row]]) -> list[tuple[int, int]]:
        if any(mid == "poison" for rows in groups for mid, _ in rows):
            raise RuntimeError("simulated database error")
        return super().add_row_groups(groups)


def test_a_failing_request_in_a_commit_group_does_not_fail_the_others(tmp_path: Path) -> None:
    buffer = _PoisonedBuffer(f"sqlite:///{tmp_path / 'b.db'}")
    writer = GroupCommitWriter(buffer)

    async def run() -> list[object]:
        jobs = [writer.store([(f"ok-{n}", "{}")]) for n in range(20)]
        jobs.insert(7, writer.store([("poison", "{}")]))
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(run())
    writer.close()
    assert isinstance(results[7], RuntimeError)
    assert [r for i, r in enumerate(results) if i != 7] == [(1, 0)] * 20
    assert buffer.message_ids() == {f"ok-{n}" for n in range(20)}


def test_store_failure_is_503_and_reports_nothing_stored(tmp_path: Path) -> None:
    buffer = _PoisonedBuffer(f"sqlite:///{tmp_path / 'b.db'}")
    app = create_receiver_app(buffer, None)
    with serve_in_thread(app) as url:
        response = httpx.post(f"{url}/segment", content=_body(_event(1, messageId="poison")))
    app.state.writer.close()
    assert response.status_code == 503
    assert "retry" in response.json()["error"]
    assert buffer.max_id() == 0


# -- signature (pure) --------------------------------------------------------------------------


def test_js_stringify_is_compact_ordered_and_keeps_non_ascii() -> None:
    parsed = orjson.loads('{"b": 1, "a": ["é", "\\u0001", "/"], "c": {"z": null, "y": true}}')
    assert (
        js_stringify(parsed) == '{"b":1,"a":["é","\\u0001","/"],"c":{"z":null,"y":true}}'.encode()
    )


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (12.5, "12.5"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (12345678901234567890, "12345678901234567000"),
    ],
)
def test_js_stringify_formats_numbers_as_javascript(number: float, text: str) -> None:
    assert js_stringify([number]) == f"[{text}]".encode()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_stringify_matches_node_json_stringify() -> None:
    raw = (
        '[{"n":1.0,"m":-0.0,"big":123456789012345678901,"tiny":1.5e-7,"e":1e21,"x":0.1,'
        '"s":"é\\u2028\\u0007\\"\\\\/\\t","k":{"b":[],"a":{}}},{"a":1,"b":2,"a":3}]'
    )
    expected = subprocess.run(
        [
            "node",
            "-e",
            "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
            "process.stdout.write(JSON.parse(s).map(x=>JSON.stringify(x)).join('\\n')))",
        ],
        input=raw.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.split(b"\n")
    assert [js_stringify(x) for x in orjson.loads(raw)] == expected


def test_verify_accepts_raw_body_or_its_js_form_and_rejects_others() -> None:
    event = _event(1)
    raw = json.dumps(event).encode()
    assert verify(raw, event, sign(raw, SECRET), SECRET)
    assert verify(raw, event, sign(js_stringify(event), SECRET).upper(), SECRET)
    assert not verify(raw, event, sign(raw, "other"), SECRET)
    assert not verify(raw, event, None, SECRET)
    assert not verify(raw, event, "not-hex-é", SECRET)
    assert not verify(b"[]", [], sign(b"[]", SECRET), SECRET)
