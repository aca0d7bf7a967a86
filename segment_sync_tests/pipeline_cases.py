"""What the whole-pipeline property test generates, and what each generated item must become.

A case is a batch of stored loyalty rows, a batch of webhook requests and a fault plan. Each
item's fate is decided here, from the documented rules (Segment's limits, the receiver's
64-level limit, the mapping's required fields), never by the code under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import orjson
from hypothesis import strategies as st

from segment_sync.inbound.signature import js_stringify, sign
from segment_sync_tests.conftest import WEBHOOK_SECRET
from segment_sync_tests.inbound.test_ingest_property import good_user_ids, padding, track, values
from segment_sync_tests.outbound.odd_rows import event_rows
from segment_sync_tests.outbound.test_bad_rows_property import KNOWN

MARKER = "refuse_me"  # the Segment stand-in answers 400 to a request carrying it (refuse_marker)
EVENT_DEPTH_LIMIT = 64  # the receiver's documented limit for one event


# -- store rows ------------------------------------------------------------------------------

BIG = {"data": orjson.dumps({"pad": "x" * 31_300}).decode()}  # 16 such messages pass 500,000 bytes
MARKED = {"data": '{"points": 5, "' + MARKER + '": true}'}


@st.composite
def store_rows(draw) -> list[dict[str, object]]:
    """Odd rows (odd_rows.event_rows), named members of the class, plain and ~30 KB good rows."""
    rows = draw(st.lists(event_rows(), max_size=12))
    rows += draw(st.lists(st.sampled_from(KNOWN), max_size=3))
    rows += [{}] * draw(st.integers(1, 10)) + [BIG] * draw(st.sampled_from([0, 0, 3, 18]))
    return draw(st.permutations(rows))


# -- webhook events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One generated event: its kind, and what its body is built from."""

    kind: str  # good, unmatched, bad_customer (the receiver takes them); else refused
    value: object

    @property
    def accepted(self) -> bool:
        return self.kind in ("good", "unmatched", "bad_customer")


def _nest(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


# Event depth is 2 + the levels in properties.total: 62 is the deepest the receiver takes.
_good_totals = values | st.sampled_from([0, 1, 61, 62]).map(lambda k: json.loads(_nest(k)))
good = st.builds(lambda u, t, p: Planned("good", (u, t, p)), good_user_ids, _good_totals, padding)
unmatched = st.sampled_from(
    [
        {"type": "identify", "userId": "c-1", "traits": {"email": "a@example.com"}},
        {"type": "track", "event": "Page Viewed", "userId": "c-1", "properties": {}},
    ]
).map(lambda e: Planned("unmatched", e))
# A missing or unusable customer: the mapping refuses it (missing: the key is left out).
bad_customer = st.sampled_from(["missing", None, "", {}, {"id": "c-1"}, [1, 2], [[1]]]).map(
    lambda u: Planned("bad_customer", u)
)
refused = st.one_of(
    st.sampled_from([63, 64, 200, 2_000]).map(lambda k: Planned("deep", k)),
    st.integers(0, 60).map(lambda cut: Planned("not_json", cut)),
    st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]).map(lambda b: Planned("not_utf8", b)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e309"]).map(
        lambda n: Planned("non_finite", n)
    ),
    st.sampled_from(["1", '"text"', "null", "[]", ""]).map(lambda t: Planned("not_object", t)),
)
planned_events = st.lists(
    st.one_of(good, good, good, unmatched, bad_customer, refused), min_size=1, max_size=30
)


@dataclass(frozen=True)
class Webhook:
    """One request to the receiver and what must come of it."""

    body: bytes
    signature: str
    refusal: str | None  # words the 400's error names; None: answered 200
    good: tuple[str, ...] = ()  # registered once each
    bad: tuple[str, ...] = ()  # a failed item each, with a reason
    unmatched: tuple[str, ...] = ()  # done, never sent


def _event(p: Planned, mid: str) -> dict:
    if p.kind == "good":
        user_id, total, pad = p.value
        return track(mid, user_id, total, pad)
    if p.kind == "unmatched":
        return {**p.value, "messageId": mid}
    event = track(mid, p.value, 1, "")
    if p.value == "missing":
        del event["userId"]
    return event


def _refused_body(p: Planned, mid: str) -> tuple[bytes, str]:
    good = json.dumps(track(mid, "c-1", 1, ""))
    if p.kind == "deep":
        return good.replace('"total": 1', f'"total": {_nest(p.value)}').encode(), "levels deep"
    if p.kind == "not_json":
        return good[: p.value].encode(), "body is" if p.value == 0 else "not valid JSON"
    if p.kind == "not_utf8":
        raw = good.encode()
        cut = raw.index(b'"c-1"') + 2
        return raw[:cut] + p.value + raw[cut:], "not valid JSON"
    if p.kind == "non_finite":
        return good.replace('"total": 1', f'"total": {p.value}').encode(), "not valid JSON"
    words = {"": "body is empty", "[]": "empty JSON array"}
    return p.value.encode(), words.get(p.value, "body is a JSON")


def webhooks(planned: list[Planned], sizes: list[int], prefix: str) -> list[Webhook]:
    """The requests: each refused body alone, the others in batches of the drawn sizes (the
    token authenticates a batch; X-Signature covers its first event, as Segment signs)."""
    out: list[Webhook] = []
    batch: list[tuple[Planned, str]] = []
    for n, p in enumerate(planned):
        mid = f"{prefix}-{p.kind}-{n}"
        if not p.accepted:
            body, words = _refused_body(p, mid)
            out.append(Webhook(body, sign(body, WEBHOOK_SECRET), words))
            continue
        batch.append((p, mid))
        if len(batch) >= sizes[n % len(sizes)]:
            out.append(_batch(batch))
            batch = []
    if batch:
        out.append(_batch(batch))
    return out


def _batch(items: list[tuple[Planned, str]]) -> Webhook:
    events = [_event(p, mid) for p, mid in items]
    ids = {
        kind: tuple(mid for p, mid in items if p.kind == kind)
        for kind in ("good", "bad_customer", "unmatched")
    }
    if len(events) == 1:
        body = json.dumps(events[0], ensure_ascii=False).encode()
        signature = sign(body, WEBHOOK_SECRET)
    else:
        body = json.dumps(events, ensure_ascii=False).encode()
        signature = sign(js_stringify(orjson.loads(body)[0]), WEBHOOK_SECRET)
    return Webhook(body, signature, None, ids["good"], ids["bad_customer"], ids["unmatched"])


# -- faults ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What goes wrong in a case: storms of 5xx and 429 (both stand-ins), a 400 for marked
    messages, and one stop: a SIGKILL at the nth request of each run, or a full log disk."""

    storm: bool
    refuse: int  # marked rows the Segment stand-in refuses (0: the fault is off)
    stop: str  # none, kill, full_disk
    kill_at: int
    out_in_flight: int
    in_chunk: int
    in_in_flight: int


faults = st.builds(
    Faults,
    storm=st.booleans(),
    refuse=st.sampled_from([0, 0, 1, 3]),
    stop=st.sampled_from(["none", "none", "kill", "full_disk"]),
    kill_at=st.integers(1, 3),
    out_in_flight=st.integers(1, 4),
    in_chunk=st.integers(1, 12),
    in_in_flight=st.integers(1, 4),
)
batch_sizes = st.lists(st.integers(1, 3), min_size=1, max_size=4)


# -- always tried: every fault, among the members of the class issue 24 named ------------------

_NAMED_ROWS = [*KNOWN, BIG, *[BIG] * 17]  # invalid UTF-8 in data and customer_id, not JSON, ...
_NAMED_EVENTS = [
    Planned("good", ("c-1", 12.5, "")),
    Planned("deep", 990),  # the signed event ~990 levels deep that once stalled every ingest
    Planned("good", ("c-2", {"n": [1e5, -0.0, 2**70]}, "\u200f\x00\x1f")),
    Planned("bad_customer", "missing"),
    Planned("unmatched", {"type": "identify", "userId": "c-1", "traits": {}}),
    Planned("not_utf8", b"\xff"),
    Planned("good", (7, json.loads(_nest(62)), "é" * 30_000)),
    Planned("bad_customer", {}),
]
NAMED_KILL = {
    "rows": _NAMED_ROWS,
    "events": _NAMED_EVENTS,
    "sizes": [2],
    "f": Faults(True, 1, "kill", 2, 2, 5, 2),
}
NAMED_FULL_DISK = {
    "rows": _NAMED_ROWS,
    "events": _NAMED_EVENTS,
    "sizes": [3, 1],
    "f": Faults(True, 3, "full_disk", 1, 4, 3, 4),
}
