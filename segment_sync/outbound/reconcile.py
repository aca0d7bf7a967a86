"""Reconciliation: loyalty rows the sync passed but never delivered, found and sent once.

The outbound sync sends rows in id order and keeps a watermark ("every row up to here is
handled"). A row that is committed with an id below the watermark after the sync passed it (an
out-of-order commit: ids are handed out when a transaction starts, rows become visible when it
commits) is never read by the sync. Reconciliation looks at the loyalty events of the last hours
instead of at ids: every row at or below the watermark that the settings would send (an event
whose action is in `outbound.event_sync`, a profile change with a field in
`outbound.customer_fields_sync`; the mapped customer ID present, not from Segment, within
Segment's size limit) must have a `delivered` row in `outbound_messages`; those that have none
are sent. Both streams are reconciled, each under its own lock.

Rows above the watermark are left to the regular sync. No Dagster here.

With several destinations (`outbound.destinations`) each is reconciled on its own: its
candidates are the rows routed to it, and only a delivery row of that destination counts, so a
delivery to one Segment source never hides a miss at another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from segment_sync.logs.vanished import fetch_all
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import (
    ORIGIN_SEGMENT,
    BadRow,
    LoyaltyEvent,
    ProfileChange,
    Stream,
)
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound import single_heir
from segment_sync.outbound.build import build_messages, unbuilt_message_id
from segment_sync.outbound.results import OutboundResult
from segment_sync.outbound.route_filter import RouteFilter
from segment_sync.outbound.state import OutboundState
from segment_sync.outbound.sync import OutboundSync
from segment_sync.segment.messages import message_id, user_id
from segment_sync.settings import Settings

# The loyalty store is read one slice of `occurred_at` at a time, so memory stays bounded
# however many events the window holds.
SLICE = timedelta(hours=1)
# A delivery row is written after the event occurred; this much slack covers clock skew between
# the loyalty platform and this machine when pruning the log's date partitions.
PARTITION_SLACK = timedelta(days=1)

# Per candidate: was it delivered, and was it logged at all (a row that cannot become a
# message is logged as failed once, by the run that passed it or else by a reconciliation).
_OUTCOMES_SQL = """
SELECT c.message_id, coalesce(bool_or(m.outcome = 'delivered'), false), count(m.message_id) > 0
FROM candidates AS c
LEFT JOIN outbound_messages AS m ON m.message_id = c.message_id AND m."date" >= ?
    AND (m.destination IS NOT DISTINCT FROM ? OR (? AND m.destination IS NULL))
GROUP BY c.message_id
"""


@dataclass
class Undelivered:
    """What a search found: the rows to send, oldest id first, and what it looked at."""

    since: datetime
    until: datetime
    watermark: int
    events: list = field(default_factory=list)  # LoyaltyEvent, or ProfileChange for profiles
    # Rows that cannot become a message (unreadable, refused by the builder, routed nowhere) never
    # logged (committed behind the watermark): sent along to be logged as failed, once.
    unsendable: list = field(default_factory=list)
    scanned: int = 0  # rows of the stream in the window
    candidates: int = 0  # of those, at or below the watermark and matching the settings
    stream: Stream = Stream.EVENTS

    @property
    def oldest(self) -> LoyaltyEvent | ProfileChange | None:
        """The undelivered event that occurred first (None when there is none)."""
        return min(self.events, key=lambda e: (e.occurred_at, e.id), default=None)


@dataclass(frozen=True)
class Reconciliation:
    """A reconciliation's search and, when it sent anything, the send's result."""

    found: Undelivered
    sent: OutboundResult | None


def _slices(
    since: datetime, until: datetime, step: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    start = since
    while start < until:
        end = min(start + step, until)
        yield start, end
        start = end


def _candidate(event: object, settings: Settings, allowed: frozenset[str]) -> bool:
    """Would the sync send this event? (allow-listed, mapped ID present, not from Segment)"""
    return (
        isinstance(event, LoyaltyEvent)  # not a BadRow: the sync logged it as failed
        and event.action in allowed
        and event.origin != ORIGIN_SEGMENT
        and bool(user_id(event, settings.general.customer_id_mapping))
    )


def _profile_candidate(change: object, settings: Settings, fields: frozenset[str]) -> bool:
    """Would the sync send this profile change? (an allow-listed field, mapped ID, not from Segment)"""
    return (
        isinstance(change, ProfileChange)
        and change.origin != ORIGIN_SEGMENT
        and not fields.isdisjoint(change.attributes)
        and bool(user_id(change, settings.general.customer_id_mapping))
    )


def find_undelivered(
    settings: Settings,
    store: LoyaltyStore,
    logs_dir: Path | str,
    *,
    watermark: int,
    since: datetime,
    until: datetime,
    slice_: timedelta = SLICE,
    stream: Stream = Stream.EVENTS,
    heir: bool = False,
) -> Undelivered:
    """Rows of `stream` that occurred in [since, until), at or below `watermark`, that the
    settings would send and that have no `delivered` row in `outbound_messages`.

    `heir`: this destination continues the single destination's progress (single_heir.py), so
    that destination's rows (`destination` NULL) are its deliveries too."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware (UTC)")
    found = Undelivered(since, until, watermark, stream=stream)
    if stream is Stream.EVENTS:
        kind, between, check = "evt", store.events_between, _candidate
        allowed = frozenset(settings.outbound.event_sync)
    else:
        kind, between, check = "prf", store.profile_changes_between, _profile_candidate
        allowed = frozenset(settings.outbound.customer_fields_sync)
    oldest_partition = (since.astimezone(UTC) - PARTITION_SLACK).date()
    route = RouteFilter.of(settings, store)
    destination = settings.outbound.destination  # None: the single destination's null rows
    with connect(logs_dir) as con:
        for start, end in _slices(since, until, slice_):
            rows = between(start, end)
            found.scanned += len(rows)
            nowhere: dict[str, object] = {}  # routed nowhere, this destination logs them
            if route is not None:  # this destination's rows only (routed nowhere: logged once)
                by_id = {r.id: r for r in rows}
                rows, unrouted = route.records(rows, stream)
                nowhere = {n.message_id: by_id[n.source_id] for n in unrouted}
                nowhere = {m: r for m, r in nowhere.items() if r.id <= watermark}
            by_message = {
                (
                    unbuilt_message_id(r, stream)
                    if isinstance(r, BadRow)
                    else message_id(kind, r.id, r.occurred_at)
                ): r
                for r in rows
                if r.id <= watermark and (isinstance(r, BadRow) or check(r, settings, allowed))
            }
            found.candidates += len(by_message) + len(nowhere)
            if not by_message and not nowhere:
                continue
            con.register("candidates", pa.table({"message_id": [*by_message, *nowhere]}))
            try:
                outcomes = fetch_all(
                    con,
                    _OUTCOMES_SQL,
                    [oldest_partition, destination, heir and destination is not None],
                )
            finally:
                con.unregister("candidates")
            missing = [
                by_message[m] for m, delivered, _ in outcomes if m in by_message and not delivered
            ]
            never_logged = {mid for mid, _, logged in outcomes if not logged}
            found.unsendable.extend(nowhere[m] for m in never_logged if m in nowhere)
            messages, not_sent, _ = build_messages(missing, settings, stream)
            sendable = {m.source_id for m in messages}
            found.events.extend(r for r in missing if r.id in sendable)
            found.unsendable.extend(
                by_message[n.message_id] for n in not_sent if n.message_id in never_logged
            )
    found.events.sort(key=lambda e: e.id)
    found.unsendable.sort(key=lambda e: e.id)
    return found


def oldest_pending(
    settings: Settings, store: LoyaltyStore, watermark: int, scan: int = 10_000
) -> LoyaltyEvent | None:
    """The first event above the watermark that the sync would send (None if none within `scan`).

    Rows above the watermark wait for the next outbound run; this one has waited the longest.
    With several destinations, only the events routed to the settings' destination count.
    """
    allowed = frozenset(settings.outbound.event_sync)
    route = RouteFilter.of(settings, store)
    newest = store.newest_id(Stream.EVENTS)
    after, scanned = watermark, 0
    while after < newest and scanned < scan:
        rows = store.events_after(after, newest, 1000)
        if not rows:
            break
        last, count = rows[-1].id, len(rows)
        if route is not None:
            rows, _ = route.records(rows, Stream.EVENTS)
        found = next((e for e in rows if _candidate(e, settings, allowed)), None)
        if found is not None:
            return found
        after, scanned = last, scanned + count
    return None


@dataclass(frozen=True)
class EventsBacklog:
    """The loyalty events owed to Segment now: passed undelivered, and waiting above the watermark."""

    now: datetime
    behind: Undelivered
    waiting: LoyaltyEvent | None


def events_backlog(
    settings: Settings, store: LoyaltyStore, state: OutboundState, wait_s: float
) -> EventsBacklog:
    """The events stream's backlog over the reconcile lookback; StreamBusy after `wait_s`."""
    # Under the stream's lock, so a running outbound run has written the delivery rows of what
    # it sent: otherwise its in-flight events would look undelivered.
    with state.lock(Stream.EVENTS, wait_s=wait_s):
        now = datetime.now(UTC)
        watermark = state.watermark(Stream.EVENTS)
        lookback = timedelta(hours=settings.maintenance.reconcile_lookback_hours)
        behind = find_undelivered(
            settings,
            store,
            settings.logs.dir,
            watermark=watermark,
            since=now - lookback,
            until=now,
            heir=single_heir.continues_single(state),
        )
        return EventsBacklog(now, behind, oldest_pending(settings, store, watermark))


def reconcile_events(
    sync: OutboundSync,
    logs_dir: Path | str,
    run_id: str,
    lookback: timedelta,
    now: datetime | None = None,
    stream: Stream = Stream.EVENTS,
) -> Reconciliation:
    """Find the undelivered rows of `stream` of the last `lookback` and send them, holding it.

    The stream's lock is held from reading the watermark to the last log row, so an outbound
    run can neither send the same rows meanwhile nor have sent rows whose delivery rows are not
    yet written. Raises OutboundFailed (via `send_rows`) when a request failed for good.
    """
    until = now or datetime.now(UTC)
    with sync.state.lock(stream):
        found = find_undelivered(
            sync.settings,
            sync.store,
            logs_dir,
            watermark=sync.state.watermark(stream),
            since=until - lookback,
            until=until,
            stream=stream,
            heir=single_heir.continues_single(sync.state),
        )
        rows = sorted(found.events + found.unsendable, key=lambda r: r.id)
        sent = sync.send_rows(stream, rows, run_id) if rows else None
    return Reconciliation(found, sent)
