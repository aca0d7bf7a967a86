"""What an inbound ingest would send to Antavo now, computed without sending or claiming anything.

The plan follows the ingest exactly: the same gate (an event that cannot be read or mapped would
fail alone, item_gate), the same mappings (apply_mappings), the same customer ID resolution, the
same grouping (an item's events never straddle two requests, at most 50 events a request) and
the same request bodies (`request_for`). `plan_inbound` is pure; `pending_items`
only reads the buffer. The result is plain data, for the CLI and for a Dagster job's config.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from segment_sync.antavo.client import MAX_BULK_EVENTS, request_for
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import PENDING
from segment_sync.inbound.customer_ids import (
    CustomerLookup,
    external_ids,
    resolve_customers,
    to_antavo_customers,
)
from segment_sync.inbound.item_gate import BufferedEvent, ItemFault, item_name, through_gate
from segment_sync.inbound.mapping.actions import Mapping
from segment_sync.inbound.mapping.antavo_event import MappingOutcome, apply_mappings
from segment_sync.redaction import Redactor

MAX_SAMPLES = 3


@dataclass
class InboundDryRun:
    """The requests an ingest would make: counts per Antavo action, requests, bytes, samples."""

    items: int = 0
    no_match: int = 0
    failed: int = 0  # items a mapping cannot turn into a request (they would fail, unsent)
    events_by_action: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    bytes: int = 0
    samples: list[str] = field(default_factory=list)  # request bodies, secrets redacted
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def events(self) -> int:
        """Antavo events the requests would carry."""
        return sum(self.events_by_action.values())

    def lines(self) -> list[str]:
        """The summary as printed by `run inbound --dry-run`."""
        out = [
            "dry run: nothing sent to Antavo, no buffer item claimed or marked",
            f"items pending {self.items}: would send {self.events} Antavo event(s) in "
            f"{self.requests} request(s), {self.bytes} bytes; no mapping matched {self.no_match}; "
            f"would fail {self.failed}",
        ]
        out += [f"  action {a}: {n}" for a, n in sorted(self.events_by_action.items())]
        out += [f"  {n} x {error}" for error, n in self.errors.most_common(5)]
        for i, body in enumerate(self.samples, 1):
            out.append(f"sample request {i}: {body}")
        return out


def plan_inbound(
    payloads: Iterable[BufferedEvent | dict[str, Any]],
    mappings: list[Mapping],
    *,
    multi_accounts: bool,
    redactor: Redactor,
    customers: CustomerLookup | None = None,
    chunk_size: int = 1000,
) -> InboundDryRun:
    """The dry-run summary of these buffered items (or events given as dicts), in buffer order."""
    plan = InboundDryRun()
    chunk: list[BufferedEvent | dict[str, Any]] = []
    for payload in payloads:
        chunk.append(payload)
        if len(chunk) >= chunk_size:
            _plan_chunk(plan, chunk, mappings, multi_accounts, redactor, customers)
            chunk = []
    if chunk:
        _plan_chunk(plan, chunk, mappings, multi_accounts, redactor, customers)
    return plan


def pending_items(
    buffer: InboundBuffer, max_attempts: int, page: int = 1000
) -> Iterator[BufferedEvent]:
    """The items an ingest would claim (pending, attempts left), in id order; read only."""
    after = 0
    while records := buffer.items(PENDING, limit=page, after_id=after):
        for record in records:
            if record.attempts < max_attempts:
                yield record
        after = records[-1].id


def _plan_chunk(
    plan: InboundDryRun,
    chunk: list[BufferedEvent | dict[str, Any]],
    mappings: list[Mapping],
    multi_accounts: bool,
    redactor: Redactor,
    customers: CustomerLookup | None,
) -> None:
    """Count one claimed chunk as the ingest's `_process` would group and send it."""

    def work(event: dict[str, Any]) -> list[MappingOutcome]:
        return apply_mappings(mappings, event, multi_accounts)

    gated = [
        through_gate(f"event {n}", e, None, work)
        if isinstance(e, dict)
        else through_gate(item_name(e), e.payload, e.fault, work)
        for n, e in enumerate(chunk)
    ]
    mapped = [o for o in gated if not isinstance(o, ItemFault)]
    for fault in (o for o in gated if isinstance(o, ItemFault)):
        plan.failed += 1
        plan.errors[redactor.text(fault.problem)[:120]] += 1
    if customers is not None:
        wanted = {i for outcomes in mapped for i in external_ids(outcomes)}
        known, refused = resolve_customers(customers, wanted) if wanted else ({}, {})
        mapped = [to_antavo_customers(outcomes, known, refused) for outcomes in mapped]
    plan.items += len(chunk)
    groups: list[list[dict[str, Any]]] = [[]]
    for outcomes in mapped:
        if not outcomes:
            plan.no_match += 1
        elif any(o.error for o in outcomes):
            plan.failed += 1
            for o in outcomes:
                if o.error:
                    plan.errors[redactor.text(f"{o.mapping_name}: {o.error}")[:120]] += 1
        else:
            if groups[-1] and len(groups[-1]) + len(outcomes) > MAX_BULK_EVENTS:
                groups.append([])
            groups[-1] += [_event(o) for o in outcomes]
    for group in groups:
        bodies = [orjson.dumps(event) for event in group]
        for start in range(0, len(bodies), MAX_BULK_EVENTS):
            _, body = request_for(bodies[start : start + MAX_BULK_EVENTS])
            plan.requests += 1
            plan.bytes += len(body)
            if len(plan.samples) < MAX_SAMPLES:
                plan.samples.append(redactor.text(body.decode()) or "")
        for event in group:
            plan.events_by_action[str(event.get("action"))] += 1


def _event(outcome: MappingOutcome) -> dict[str, Any]:
    """The Antavo event of a successful outcome."""
    assert outcome.antavo_event is not None
    return outcome.antavo_event
