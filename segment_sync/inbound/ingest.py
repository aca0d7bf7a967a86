"""One inbound ingest: buffered Segment events -> mappings -> Antavo Events API -> inbound log."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from segment_sync.inbound.buffer import BufferItem, InboundBuffer
from segment_sync.inbound.mappings import Mapping, apply_mappings
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.antavo_client import AntavoClient, AntavoRequestRecord, EventResult
from segment_sync.redaction import Redactor
from segment_sync.settings import Settings

NO_MATCH = "no enabled mapping's trigger matched this event"


@dataclass
class IngestCounts:
    items: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    no_match: int = 0
    antavo_events: int = 0
    requests: int = 0


@dataclass
class IngestResult:
    run_id: str
    upto: int
    counts: IngestCounts = field(default_factory=IngestCounts)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """A run fails when an item failed for good or is waiting for a retry."""
        return self.counts.failed == 0 and self.counts.retried == 0


@dataclass
class _Planned:
    """One Antavo event a mapping produced for a buffered item."""

    item: BufferItem
    mapping: str
    event: dict[str, Any]
    result: EventResult | None = None


class InboundIngest:
    """Processes the buffer in bounded chunks; every item ends done, failed or back to pending."""

    def __init__(
        self,
        settings: Settings,
        api_key: str,
        api_secret: str,
        logs: LogWriter,
        *,
        buffer: InboundBuffer | None = None,
        backoff_base_s: float = 0.2,
    ) -> None:
        self.settings = settings
        self.inbound = settings.inbound
        self.api_key, self.api_secret = api_key, api_secret
        self.logs = logs
        self.buffer = buffer or InboundBuffer(self.inbound.buffer_url)
        self.mappings: list[Mapping] = self.inbound.active_mappings()
        self.redactor = Redactor([api_key, api_secret])
        self.backoff_base_s = backoff_base_s

    def run(self, run_id: str, upto: int | None = None) -> IngestResult:
        """Process every item pending now (ids up to `upto`, default the newest)."""
        return asyncio.run(self._run(run_id, self.buffer.max_id() if upto is None else upto))

    async def _run(self, run_id: str, upto: int) -> IngestResult:
        result = IngestResult(run_id, upto)

        def on_request(record: AntavoRequestRecord) -> None:
            result.counts.requests += 1
            self._log_request(record, run_id)

        client = AntavoClient(
            self.inbound.endpoint,
            self.api_key,
            self.api_secret,
            stack=self.inbound.stack,
            rate_limit_per_minute=self.inbound.rate_limit_per_minute,
            max_retries=self.inbound.max_retries,
            backoff_base_s=self.backoff_base_s,
            concurrency=self.inbound.max_in_flight,
            on_request=on_request,
        )
        after = 0
        try:
            while True:
                items = self.buffer.claim(
                    run_id,
                    self.inbound.chunk_size,
                    self.inbound.max_attempts,
                    after_id=after,
                    up_to_id=upto,
                )
                if not items:
                    break
                after = items[-1].id
                await self._process(client, items, result)
                self.logs.flush()
        finally:
            await client.aclose()
            self.logs.flush()
        return result

    async def _process(
        self, client: AntavoClient, items: list[BufferItem], result: IngestResult
    ) -> None:
        counts = result.counts
        counts.items += len(items)
        planned: list[_Planned] = []
        failed: list[tuple[int, str]] = []
        done: list[tuple[int, list[str]]] = []
        rows: list[dict[str, Any]] = []
        multi = self.inbound.multi_accounts
        for item in items:
            outcomes = apply_mappings(self.mappings, item.payload, multi)
            errors = [f"{o.mapping_name}: {o.error}" for o in outcomes if o.error]
            if not outcomes:
                done.append((item.id, []))
                rows.append(self._item_row(item, result.run_id, None, "no_match", error=NO_MATCH))
            elif errors:
                failed.append((item.id, "; ".join(errors)))
                for o in outcomes:
                    rows.append(
                        self._item_row(
                            item,
                            result.run_id,
                            o.mapping_name,
                            "failed",
                            o.antavo_event,
                            error=o.error or "another mapping of this event failed",
                        )
                    )
            else:
                planned += [_Planned(item, o.mapping_name, o.antavo_event) for o in outcomes]
        results = await client.send_events([p.event for p in planned]) if planned else []
        for plan, res in zip(planned, results, strict=True):
            plan.result = res
        retry: list[tuple[int, str]] = []
        by_item: dict[int, list[_Planned]] = {}
        for plan in planned:
            by_item.setdefault(plan.item.id, []).append(plan)
        for item_id, plans in by_item.items():
            bad = [p for p in plans if not p.result.ok]
            if not bad:
                done.append((item_id, [p.result.event_id or "" for p in plans]))
            elif any(not p.result.retryable for p in bad):
                failed.append((item_id, "; ".join(f"{p.mapping}: {p.result.error}" for p in bad)))
            else:
                retry.append((item_id, "; ".join(f"{p.mapping}: {p.result.error}" for p in bad)))
        statuses = self.buffer.mark_many(
            done=done, failed=failed, retry=retry, max_attempts=self.inbound.max_attempts
        )
        item_outcome = {"done": "done", "failed": "failed", "pending": "retry"}
        for plan in planned:
            outcome = item_outcome[statuses[plan.item.id]]
            rows.append(
                self._item_row(
                    plan.item, result.run_id, plan.mapping, outcome, plan.event, plan.result
                )
            )
        for row in rows:
            if row["error"]:
                result.errors[row["error"][:120]] += 1
        self.logs.extend("inbound_items", rows)
        no_match = sum(1 for r in rows if r["outcome"] == "no_match")
        counts.no_match += no_match
        counts.done += sum(1 for s in statuses.values() if s == "done") - no_match
        counts.failed += sum(1 for s in statuses.values() if s == "failed")
        counts.retried += sum(1 for s in statuses.values() if s == "pending")
        counts.antavo_events += sum(1 for p in planned if p.result.ok)

    def _item_row(
        self,
        item: BufferItem,
        run_id: str,
        mapping: str | None,
        outcome: str,
        event: dict[str, Any] | None = None,
        result: EventResult | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        return {
            "timestamp": datetime.now(UTC),
            "buffer_item_id": item.id,
            "message_id": item.message_id,
            "run_id": run_id,
            "event_type": item.payload.get("type")
            if isinstance(item.payload.get("type"), str)
            else None,
            "mapping_name": mapping,
            "outcome": outcome,
            "antavo_action": (event or {}).get("action"),
            "customer_id": (event or {}).get("customer"),
            "antavo_event_id": result.event_id if result else None,
            "error": self.redactor.text(error or (result.error if result else None)),
            "identifier": result.identifier if result else None,
        }

    def _log_request(self, record: AntavoRequestRecord, run_id: str) -> None:
        """One inbound_log row per event of the request: the manual's columns are per event."""
        events = _request_events(record.request_body)
        results = _event_results(record.response_body, len(events)) if record.error is None else {}
        rows = []
        for index, event in enumerate(events or [None]):
            result = results.get(index)
            error = record.error or _result_error(result)
            rows.append(
                {
                    "timestamp": record.started_at,
                    "customer_id": _text((event or {}).get("customer")),
                    "action": _text((event or {}).get("action")),
                    "status": "error" if error else "success",
                    "event_id": _result_event_id(result),
                    "error": self.redactor.text(error),
                    "identifier": record.identifier,
                    "run_id": run_id,
                    "status_code": record.status_code,
                    "response_time_s": record.response_time_s,
                    "event_count": record.event_count,
                    "request_body": self.redactor.text(
                        orjson.dumps(event).decode() if event else record.request_body
                    ),
                    "response_body": self.redactor.text(
                        orjson.dumps(result).decode() if result else record.response_body
                    ),
                }
            )
        self.logs.extend("inbound_log", rows)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _request_events(body: str) -> list[dict[str, Any]]:
    """The events of a /events (one object) or /events/bulk ({"events": [...]}) request body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if isinstance(parsed, dict) and isinstance(parsed.get("events"), list):
        return [e for e in parsed["events"] if isinstance(e, dict)]
    return [parsed] if isinstance(parsed, dict) else []


def _event_results(body: str | None, count: int) -> dict[int, dict[str, Any]]:
    """Per-event results by position: bulk answers {"results": [...]} in input order; a single
    /events call answers with the customer (its registered events) or an error object."""
    try:
        parsed = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    if isinstance(parsed.get("results"), list):
        return {i: r for i, r in enumerate(parsed["results"][:count]) if isinstance(r, dict)}
    return {0: parsed} if count == 1 else {}


def _result_error(result: dict[str, Any] | None) -> str | None:
    error = (result or {}).get("error")
    if not isinstance(error, dict):
        return None
    return f"{error.get('message', 'error')} ({error.get('type', '')} {error.get('code', '')})".replace(
        " )", ")"
    )


def _result_event_id(result: dict[str, Any] | None) -> str | None:
    events = (result or {}).get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict) and events[0].get("id"):
        return str(events[0]["id"])
    return None
