"""What an outbound sync would send to Segment now, computed without sending or moving progress.

The rows are read from the watermark up to the newest safe id, built into messages by the same
builders as the sync and cut into /v1/batch requests by the same `request_bounds`, chunk by
chunk as the sync does. With several destinations, each destination's plan keeps the rows
routed to it (the sync's RouteFilter), and the first destination counts the rows routed nowhere
as would-fail, with the reason the real run logs. No lock is taken, nothing is logged, the watermark is only read.
`add_chunk` is pure; the result is plain data, for the CLI and for a Dagster job's config.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from segment_sync.directions import allow_list_off
from segment_sync.loyalty.records import Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.build import EVENT_TYPES, BuiltChunk, built_from_records
from segment_sync.outbound.columnar_build import ColumnarBuilder
from segment_sync.outbound.report import TOP_REASONS, reason_key
from segment_sync.outbound.route_filter import RouteFilter
from segment_sync.outbound.send_chunk import with_unrouted
from segment_sync.redaction import Redactor
from segment_sync.segment.batching import request_bounds
from segment_sync.segment.messages import iso_timestamp
from segment_sync.settings import Settings

MAX_SAMPLES = 3


class Watermarks(Protocol):
    """Where each stream's progress stands (an OutboundState, or progress read without a key)."""

    def watermark(self, stream: Stream) -> int: ...

    def close(self) -> None: ...


@dataclass
class StreamDryRun:
    """One stream's would-be sends: messages of one call type, requests, bytes."""

    stream: str  # events | profiles
    event_type: str  # track | identify
    watermark: int = 0
    upto: int = 0
    rows_read: int = 0
    messages: int = 0
    not_allow_listed: int = 0
    skipped: int = 0
    failed: int = 0  # rows that cannot become a message (logged as failed by a real run)
    requests: int = 0
    bytes: int = 0
    destination: str | None = None  # None: the single destination
    reasons: Counter[str] = field(default_factory=Counter)  # why rows would fail, as reported

    @property
    def label(self) -> str:
        """`events`, or `events@eu` with several destinations (as in the run's summary)."""
        return self.stream if self.destination is None else f"{self.stream}@{self.destination}"


@dataclass
class OutboundDryRun:
    """Every stream's would-be sends, up to 3 sample message bodies, and why a stream is not run."""

    streams: list[StreamDryRun] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def messages_by_type(self) -> dict[str, int]:
        """Messages per Segment call type (track, identify), every destination together."""
        counts: dict[str, int] = {}
        for s in self.streams:
            counts[s.event_type] = counts.get(s.event_type, 0) + s.messages
        return counts

    def destination_lines(self) -> list[str]:
        """Per destination: rows routed there, would-be messages, failures, requests, bytes."""
        names = list(dict.fromkeys(s.destination for s in self.streams))
        if names == [None] or not names:
            return []
        out = [
            f"{'destination':<12} {'rows':>8} {'messages':>9} {'would fail':>11} "
            f"{'requests':>9} {'bytes':>10}"
        ]
        for name in names:
            mine = [s for s in self.streams if s.destination == name]
            out.append(
                f"{name:<12} {sum(s.rows_read for s in mine):>8} "
                f"{sum(s.messages for s in mine):>9} {sum(s.failed for s in mine):>11} "
                f"{sum(s.requests for s in mine):>9} {sum(s.bytes for s in mine):>10}"
            )
        return out

    def reason_lines(self) -> list[str]:
        """The most common reasons rows would fail, as a real run's `top reasons` prints them."""
        reasons: Counter[str] = Counter()
        for s in self.streams:
            reasons.update(s.reasons)
        if not reasons:
            return []
        top = reasons.most_common(TOP_REASONS)
        return ["top reasons a real run would fail with:"] + [
            f"{n:>8} x {reason}" for reason, n in top
        ]

    def lines(self) -> list[str]:
        """The summary as printed by `run outbound --dry-run`."""
        out = ["dry run: nothing sent to Segment, the watermark not moved"]
        for s in self.streams:
            ids = f"ids {s.watermark + 1}..{s.upto}" if s.upto > s.watermark else "nothing pending"
            out.append(
                f"{s.label} ({s.event_type}): {ids} (handled up to id {s.watermark}), "
                f"rows {s.rows_read}: "
                f"would send {s.messages} message(s) in {s.requests} request(s), {s.bytes} bytes; "
                f"not allow-listed {s.not_allow_listed}, skipped {s.skipped}, would fail {s.failed}"
            )
        if self.streams:
            by_type = ", ".join(f"{t} {n}" for t, n in self.messages_by_type().items())
            requests = sum(s.requests for s in self.streams)
            size = sum(s.bytes for s in self.streams)
            out.append(f"total: {by_type}; {requests} request(s), {size} bytes")
        out += self.destination_lines() + self.reason_lines()
        out += self.notes
        out += [f"sample message {i}: {body}" for i, body in enumerate(self.samples, 1)]
        return out


def add_chunk(
    plan: StreamDryRun, built: BuiltChunk, samples: list[str], redactor: Redactor
) -> None:
    """Count one built chunk into `plan` as the sync would batch it; keep up to 3 samples."""
    plan.rows_read += built.rows_read
    plan.not_allow_listed += built.not_allow_listed
    for n in built.not_sent:
        if n.outcome == "skipped":
            plan.skipped += 1
        else:
            plan.failed += 1
            plan.reasons[reason_key(redactor.text(n.reason))] += 1
    messages = built.messages
    plan.messages += len(messages)
    sent_at = iso_timestamp(datetime.now(UTC))
    for start, stop in request_bounds(messages.sizes):
        plan.requests += 1
        plan.bytes += len(messages.slice(start, stop).request_body(sent_at))
    for i in range(min(MAX_SAMPLES - len(samples), len(messages))):
        body = messages.bodies[i].as_py()[:-1].decode()  # minus its trailing comma
        samples.append(redactor.text(body) or "")


def plan_outbound(
    settings: Settings,
    store: LoyaltyStore,
    state: Watermarks,
    streams: list[Stream],
    redactor: Redactor,
) -> OutboundDryRun:
    """Read and build what each enabled stream would send; reads only. Settings of one of
    several destinations (`Settings.for_destination`) count only the rows routed to it."""
    plan = OutboundDryRun()
    name = settings.outbound.destination
    at = "" if name is None else f" (destination {name})"
    for stream in streams:
        off = allow_list_off(settings, stream)
        if off:
            plan.notes.append(f"{stream.value}: not run; {off}")  # the same for every destination
            continue
        watermark = state.watermark(stream)
        newest = store.newest_id(stream)
        if watermark > newest:
            plan.notes.append(
                f"{stream.value}{at}: the watermark (id {watermark}) is ahead of the store's newest "
                f"id {newest}; a real run fails (is loyalty_store.url the right store?)"
            )
            continue
        target = store.max_id(stream, floor=watermark)
        one = StreamDryRun(stream.value, EVENT_TYPES[stream], watermark, target, destination=name)
        route = RouteFilter.of(settings, store, record=False)
        _read(settings, store, stream, one, plan.samples, redactor, route)
        plan.streams.append(one)
    return plan


def _read(
    settings: Settings,
    store: LoyaltyStore,
    stream: Stream,
    one: StreamDryRun,
    samples: list[str],
    redactor: Redactor,
    route: RouteFilter | None,
) -> None:
    """Every chunk from the watermark to the target, routed, built and counted as the sync does."""
    chunk_size = settings.outbound.chunk_size
    builder = ColumnarBuilder(settings, stream)
    after = one.watermark
    try:
        while after < one.upto:
            chunk = store.arrow_after(stream, after, one.upto, chunk_size)
            if chunk is None:  # a row Arrow cannot carry: rows, built one by one
                rows = store.rows_after(stream, after, one.upto, chunk_size)
                if not rows:
                    return
                mine, unrouted = route.records(rows, stream) if route else (rows, [])
                built = built_from_records(mine, settings, stream)
                after = rows[-1].id
            else:
                if not len(chunk):
                    return
                after = chunk["id"][-1].as_py()
                mine, unrouted = route.arrow(chunk, stream) if route else (chunk, [])
                built = (
                    builder.build(mine) if len(mine) else built_from_records([], settings, stream)
                )
            built = with_unrouted(built, unrouted)
            add_chunk(one, built, samples, redactor)
    finally:
        builder.close()
