"""The gate a buffered event passes into the pipeline: whatever goes wrong for one event is that
event's fault, named, and the call returns instead of raising."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from segment_sync.inbound.buffer_rows import BufferItem
from segment_sync.inbound.item_gate import (
    ItemFault,
    UnreadableEvent,
    decode_event,
    read_event,
    through_gate_all,
)


def item(n: int, payload: dict | None = None, fault: str | None = None) -> BufferItem:
    return BufferItem(n, f"m-{n}", payload or {"n": n}, 0, datetime.now(UTC), fault)


def test_an_exception_for_one_item_becomes_its_fault_and_the_others_go_on():
    def work(event: dict) -> int:
        if event["n"] == 2:
            raise TypeError("'<' not supported between instances of 'dict' and 'int'")
        return event["n"] * 10

    results = through_gate_all([item(1), item(2), item(3)], work)

    assert [r for _, r in results if not isinstance(r, ItemFault)] == [10, 30]
    [(failed, fault)] = [(i, r) for i, r in results if isinstance(r, ItemFault)]
    assert failed.id == 2
    assert fault.reason == (
        "buffer item 2 (messageId 'm-2') could not be processed: TypeError: '<' not supported "
        "between instances of 'dict' and 'int'"
    )


def test_a_recursion_error_is_named_as_too_deep_not_raised():
    def recurse(event: dict) -> int:
        return recurse(event)

    [(_, fault)] = through_gate_all([item(7)], recurse)
    assert isinstance(fault, ItemFault)
    assert fault.problem == "could not be processed: nested too deeply to process (RecursionError)"


def test_an_unreadable_item_never_reaches_the_work():
    seen: list[dict] = []
    [(_, fault)] = through_gate_all([item(4, {}, "cannot be read: x")], seen.append)
    assert seen == [] and fault.reason == "buffer item 4 (messageId 'm-4') cannot be read: x"


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b'{"a":' * 65 + b"1" + b"}" * 65, "nested more than 64 levels deep"),
        (b'{"userId":"\xff"}'.decode("utf-8", "surrogateescape"), "not valid JSON"),
        (b"[1]", "expected one Segment event (a JSON object), got list"),
        (b"", "not valid JSON"),
    ],
    ids=["65 levels", "not UTF-8 (as the buffer reads it)", "an array", "empty"],
)
def test_a_stored_text_that_is_no_event_is_read_as_a_fault(raw, problem):
    with pytest.raises(UnreadableEvent, match=re.escape(problem)):
        decode_event(raw)
    payload, fault = read_event(raw)
    assert payload == {} and fault.startswith("cannot be read: ") and problem in fault
