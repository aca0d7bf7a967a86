"""The one gate a buffered webhook event passes to enter the pipeline: read, decode, map.

Every path that turns a buffered event into something (the ingest, its dry run, the mapping
preview) goes through here: `read_event` decodes the stored text and `through_gate` runs the
per-event work. Whatever goes wrong for one event (text that is not UTF-8 or not JSON, nesting
past `MAX_EVENT_DEPTH`, a value some mapping code did not expect) becomes that event's
`ItemFault`, a one-line reason naming the item and the problem; the events beside it go on.
The receiver refuses such events today, but a buffer may hold older ones, or rows another
client wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from segment_sync.inbound.json_depth import MAX_EVENT_DEPTH, nested_deeper_than

T = TypeVar("T")
_MAX_SHOWN_ID = 80
_MAX_DETAIL = 300


class UnreadableEvent(ValueError):
    """A stored event that cannot become a Segment event object; the message says why."""


@dataclass(frozen=True)
class ItemFault:
    """Why one buffered event cannot go on: it fails alone, with this reason."""

    name: str  # which event: `buffer item 12 (messageId 'm-1')`
    problem: str  # what is wrong with it, the same words for every event it applies to

    @property
    def reason(self) -> str:
        """The event and its problem, as its buffer row's last error says."""
        return f"{self.name} {self.problem}"


class BufferedEvent(Protocol):
    """What the gate needs of a buffered item (BufferItem, BufferRecord)."""

    @property
    def id(self) -> int: ...

    @property
    def message_id(self) -> str: ...

    @property
    def payload(self) -> dict: ...

    @property
    def fault(self) -> str | None: ...


def readable(text: str) -> str:
    """`text` with bytes that were not UTF-8 (surrogate-escaped by the buffer's reader) as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decode_event(raw: str | bytes) -> dict[str, Any]:
    """The Segment event a JSON text holds; UnreadableEvent says what is wrong with it."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if nested_deeper_than(data, MAX_EVENT_DEPTH):
        raise UnreadableEvent(
            f"nested more than {MAX_EVENT_DEPTH} levels deep (objects and arrays; the limit "
            "for an event)"
        )
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UnreadableEvent(f"not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        kind = "null" if event is None else type(event).__name__
        raise UnreadableEvent(f"expected one Segment event (a JSON object), got {kind}")
    return event


def read_event(raw: str | bytes) -> tuple[dict[str, Any], str | None]:
    """(the event, None), or ({}, why it cannot be read): a buffer read never raises for it."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    # Too few brackets in all to nest deeper (json_depth): most events are parsed at once, and
    # only one that fails here goes through `decode_event`, for its reason.
    if data.count(b"[") + data.count(b"{") <= MAX_EVENT_DEPTH:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(event) is dict:
                return event, None
    try:
        return decode_event(raw), None
    except UnreadableEvent as exc:
        return {}, f"cannot be read: {exc}"


def item_name(item: BufferedEvent) -> str:
    """`buffer item 12 (messageId 'm-1')`, the id cut short when long."""
    mid = readable(item.message_id)
    if len(mid) > _MAX_SHOWN_ID:
        mid = mid[: _MAX_SHOWN_ID - 3] + "..."
    return f"buffer item {item.id} (messageId {mid!r})"


def through_gate(
    name: str, event: dict[str, Any], fault: str | None, work: Callable[[dict[str, Any]], T]
) -> T | ItemFault:
    """`work(event)`, or the fault of the event called `name`: unreadable (`fault`), or whatever
    `work` raised for it."""
    return _through(lambda: name, event, fault, work)


def _through(
    name: Callable[[], str],
    event: dict[str, Any],
    fault: str | None,
    work: Callable[[dict[str, Any]], T],
) -> T | ItemFault:
    """`through_gate`, naming the event only when it fails."""
    if fault is not None:
        return ItemFault(name(), fault)
    try:
        return work(event)
    except Exception as exc:  # noqa: BLE001 - one event's failure, never its neighbours'
        return ItemFault(name(), f"could not be processed: {_detail(exc)}")


def through_gate_all(
    items: Iterable[BufferedEvent], work: Callable[[dict[str, Any]], T]
) -> list[tuple[Any, T | ItemFault]]:
    """`through_gate` for each buffered item, in order: (item, its result or its fault)."""
    out: list[tuple[Any, T | ItemFault]] = []
    for item in items:  # `_through` inlined: this runs for every event an ingest claims
        fault = item.fault
        if fault is None:
            try:
                out.append((item, work(item.payload)))
                continue
            except Exception as exc:  # noqa: BLE001 - one event's failure, never its neighbours'
                fault = f"could not be processed: {_detail(exc)}"
        out.append((item, ItemFault(item_name(item), fault)))
    return out


def _detail(exc: BaseException) -> str:
    """An exception as one short line: its kind and its text."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to process (RecursionError)"
    text = " ".join(str(exc).split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
