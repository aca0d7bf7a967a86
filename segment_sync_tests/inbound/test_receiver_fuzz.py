"""Generated bodies and headers against the real receiver, on SQLite and PostgreSQL buffers.

Properties: no request gets a 5xx; every refusal is a one-line JSON error; and after each
request the buffer holds exactly the messageIds of the events answered 2xx.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import message_id_of
from segment_sync.inbound.receiver import create_receiver_app
from segment_sync.inbound.signature import js_stringify, sign
from segment_sync_tests.inbound.receiver_harness import SECRET, TOKEN, serve_receiver

MAX_BODY = 64 * 1024
EXAMPLES = 100


@dataclass
class _Receiver:
    client: httpx.Client
    buffer: InboundBuffer
    acknowledged: set[str] = field(default_factory=set)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inbound.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["token", "signature-only"])
def receiver(request, backend_url: str) -> Iterator[_Receiver]:
    """One receiver for all examples of a test (state carries over, as in production)."""
    buffer = InboundBuffer(backend_url)
    token = TOKEN if request.param == "token" else None
    app = create_receiver_app(buffer, SECRET, MAX_BODY, webhook_token=token)
    with serve_receiver(app) as (host, port):
        client = httpx.Client(base_url=f"http://{host}:{port}", timeout=30)
        with client:
            state = _Receiver(client, buffer)
            yield state
    buffer.close()
    accepted = sum(200 <= s < 300 for s in state.statuses)
    print(f"fuzz {request.node.callspec.id}: {len(state.statuses)} requests, {accepted} accepted")
    assert accepted >= 5, "the generated requests hardly ever reached the buffer"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_message_ids = (
    st.text(max_size=40)
    | st.text(alphabet=st.sampled_from("ab\x00\u00e9\U0001f600"), max_size=6)
    | st.builds(lambda c, n: c * n, st.sampled_from(["a", "\u00e9"]), st.integers(495, 1005))
    | st.integers()
)
_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page"])},
    optional={
        "messageId": _message_ids,
        "userId": st.text(max_size=20),
        "properties": st.dictionaries(st.text(max_size=8), _values, max_size=4),
    },
)


def _dump(value: object, ascii_only: bool) -> bytes:
    """Serialise with the stdlib (big integers keep their digits; escapes vary)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


_json_bodies = st.builds(
    _dump,
    _events | st.lists(_events, min_size=1, max_size=5) | _values,
    st.booleans(),
)
_bodies = st.one_of(
    _json_bodies, _json_bodies, _json_bodies, st.binary(max_size=200), st.sampled_from([b"", b"[]"])
)
_content_types = st.one_of(
    st.sampled_from([None, "application/json", "application/json; charset=utf-8"]),
    st.sampled_from([None, "application/json", "application/vnd.segment+json"]),
    st.sampled_from(["text/plain", "application/json; charset=latin-1", "multipart/form-data"]),
)


def _mostly(good: object, *bad: object) -> st.SearchStrategy:
    """`good` three times in four, so most requests get past the edge and reach the buffer."""
    return (
        st.sampled_from([good, good, good, *bad])
        if len(bad) <= 1
        else st.one_of(st.just(good), st.just(good), st.just(good), st.sampled_from(bad))
    )


@st.composite
def _requests(draw) -> tuple[bytes, bytes, dict[str, str]]:
    """(body as sent, body decoded, headers)."""
    raw = draw(_bodies)
    headers: dict[str, str] = {}
    content_type = draw(_content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth = draw(_mostly("right", "wrong", "missing", "basic"))
    if auth != "missing":
        headers["Authorization"] = {
            "right": f"Bearer {TOKEN}",
            "wrong": "Bearer not-the-token",
            "basic": f"Basic {TOKEN}",
        }[auth]
    signature = draw(_mostly("right", "wrong", "missing"))
    if signature != "missing":
        headers["X-Signature"] = _signature(raw) if signature == "right" else "ab" * 20
    sent = raw
    encoding = draw(_mostly(draw(st.sampled_from(["identity", "gzip"])), "gzip+trailing", "br"))
    if encoding != "identity":
        headers["Content-Encoding"] = encoding.split("+")[0]
        sent = gzip.compress(raw) if encoding.startswith("gzip") else raw
        if encoding == "gzip+trailing":
            sent += draw(st.binary(min_size=1, max_size=8))
    return sent, raw, headers


def _signature(raw: bytes) -> str:
    """The X-Signature Segment would send for this body."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return sign(raw, SECRET)
    if isinstance(parsed, list) and parsed:
        return sign(js_stringify(parsed[0]), SECRET)
    return sign(raw, SECRET)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=_requests())
def test_never_5xx_and_the_buffer_holds_exactly_what_was_acknowledged(
    receiver: _Receiver, request: tuple[bytes, bytes, dict[str, str]]
) -> None:
    sent, raw, headers = request
    response = receiver.client.post("/segment", content=sent, headers=headers)
    receiver.statuses.append(response.status_code)
    assert response.status_code < 500, response.text
    if 200 <= response.status_code < 300:
        events = orjson.loads(raw)
        events = events if isinstance(events, list) else [events]
        receiver.acknowledged |= {message_id_of(e) for e in events}
        answer = response.json()
        assert answer["stored"] + answer["duplicates"] == len(events)
    else:
        error = response.json()["error"]
        assert error and "\n" not in error
    assert receiver.buffer.message_ids() == receiver.acknowledged
