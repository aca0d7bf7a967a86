"""LOCAL STAND-IN for the Antavo Events API: tests and demo only, never a production target.

It speaks the documented contract closely enough for the real client to be tested over loopback:

- `POST /events` takes `{customer, action, data?, account?, external_id?}` and answers 200 with
  a customer object whose `events` list holds the registered event (`{"id", "action"}`);
  Antavo lists only point-changing events there, the stand-in always lists the one it registered.
- `POST /events/bulk` takes `{"events": [...]}` (at most 50; real Antavo accepts more with
  degraded performance, the stand-in answers 400 so a client that forgets to split is caught)
  and answers 200 `{"results": [...], "total": n, "errors": k}`, one result per event in order:
  `{"events": [{"id", "action"}]}` or `{"error": {"type", "code", "message"}}` (Antavo's format).
- Errors look like `{"error": {"type", "code", "message"}}`. Documented by Antavo: customer not
  found (`NotFoundException`, 160212, HTTP 404 on /events) and missing parameters
  (`BadRequestException`, 113401). Other codes (401, 429, 5xx, oversize bulk) are the stand-in's.
- Requests must be Escher-signed as Antavo signs them (see `segment_sync.antavo.escher`);
  missing, malformed, stale or wrong signatures get 401. Secrets are never echoed.
- With `known_customers` set, events for other customers fail with "Customer not found", except
  `opt_in`, which (as Antavo documents) registers an unknown customer.
- A sliding-window rate limit (requests per minute, answered 429 with Retry-After), random 503s
  at `error_rate` from a seeded RNG, and queued one-shot faults (`fail_next`).
- INJECTED FAULT, not Antavo's documented behaviour: `bulk_answer_faults` queues answers for the
  next /events/bulk requests that register every event but do not account for them all
  (`one_short`: the last result is missing; `malformed`: the JSON body is cut in half), so a
  client's handling of an ambiguous answer can be tested.
- `GET /customers/{id}` (Antavo's Customers API, used by `settings check --connect` as a
  harmless signed request): Escher-checked like every route (401 when the signature is
  wrong); 200 with a minimal customer (`id`, `status`) for one it knows (in `known_customers`
  or with a registered event), else 404 `NotFoundException` 160212 "Customer not found". Real
  Antavo returns the whole customer object, and documents that error without the `error`
  envelope; the stand-in keeps its one error shape.
- Inspection: `GET /_standin/events`, `GET /_standin/stats`, `POST /_standin/reset`,
  `GET|POST /_standin/config`, `GET /healthz`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.antavo.escher import check_credentials
from segment_sync.standins.antavo_admission import AntavoAdmission
from segment_sync.standins.antavo_events import AntavoRegistration
from segment_sync.standins.antavo_inspect import inspection_routes
from segment_sync.standins.antavo_wire import (
    CONFIG_FIELDS,
    Rejection,
    customer_not_found,
    json_response,
    parse_config,
    parse_json,
)

DEFAULT_CREATING_ACTIONS = ("opt_in",)


class AntavoStandin(AntavoAdmission, AntavoRegistration):
    """LOCAL STAND-IN for the Antavo Events API; keeps the events it registered."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        stack: str = "test",
        known_customers: set[str] | None = None,
        rate_limit_per_minute: int | None = None,
        error_rate: float = 0.0,
        seed: int | None = None,
        on_event: Callable[[dict, str], None] | None = None,
        rate_limit_window_s: float = 60.0,
        creating_actions: Iterable[str] = DEFAULT_CREATING_ACTIONS,
    ) -> None:
        check_credentials(api_key, api_secret, stack)
        self.stack = stack
        self._credentials = {api_key: api_secret}
        self.on_event = on_event
        self._lock = threading.Lock()
        self.known_customers: set[str] | None = None
        self.creating_actions: frozenset[str] = frozenset()
        self.rate_limit_per_minute: int | None = None
        self.rate_limit_window_s = 60.0
        self.error_rate = 0.0
        self.retry_after_s = 1.0
        self.fail_next: deque[int] = deque()
        self.bulk_answer_faults: deque[str] = deque()
        self._rng = random.Random(seed)
        self.configure(
            known_customers=known_customers,
            creating_actions=creating_actions,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_window_s=rate_limit_window_s,
            error_rate=error_rate,
        )
        self._id_prefix = random.Random(seed).randbytes(5).hex()
        self._id_counter = count(random.Random(seed).randrange(1 << 24))
        self.events: list[dict] = []
        self._window: deque[float] = deque()
        self._counts: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self.app = self._build_app()

    def __repr__(self) -> str:
        """Stack only: never the credentials."""
        return f"AntavoStandin(stack={self.stack!r})"

    # -- Python-side control (the HTTP inspection endpoints call these) --

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change behaviour at runtime (fields of `config()`); ValueError on bad names/values."""
        unknown = sorted(set(changes) - set(CONFIG_FIELDS))
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        parsed = {name: parse_config(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in parsed.items():
                if name == "seed":
                    self._rng = random.Random(value)
                elif name == "fail_next":
                    self.fail_next.extend(value)
                elif name == "bulk_answer_faults":
                    self.bulk_answer_faults.extend(value)
                else:
                    setattr(self, name, value)
        return self.config()

    def config(self) -> dict[str, Any]:
        """Current behaviour settings."""
        with self._lock:
            known = self.known_customers
            return {
                "stack": self.stack,
                "error_rate": self.error_rate,
                "rate_limit_per_minute": self.rate_limit_per_minute,
                "rate_limit_window_s": self.rate_limit_window_s,
                "known_customers": None if known is None else sorted(known),
                "creating_actions": sorted(self.creating_actions),
                "fail_next": list(self.fail_next),
                "bulk_answer_faults": list(self.bulk_answer_faults),
                "retry_after_s": self.retry_after_s,
            }

    def reset(self) -> None:
        """Forget registered events, counters, the rate window and queued faults."""
        with self._lock:
            self.events.clear()
            self._window.clear()
            self._counts.clear()
            self._by_status.clear()
            self.fail_next.clear()
            self.bulk_answer_faults.clear()

    def registered(self, customer: str | None = None, action: str | None = None) -> list[dict]:
        """Registered events, optionally only a customer's or an action's."""
        wanted = {"customer": customer, "action": action}
        with self._lock:
            return [e for e in self.events if all(v in (None, e.get(k)) for k, v in wanted.items())]

    def stats(self) -> dict[str, Any]:
        """Requests by status, events registered/rejected, 429s."""
        with self._lock:
            return {
                "requests": self._counts["requests"],
                "requests_by_status": dict(self._by_status),
                "requests_by_path": {
                    k.removeprefix("path:"): v for k, v in self._counts.items() if k[:5] == "path:"
                },
                "events_registered": self._counts["events_registered"],
                "events_rejected": self._counts["events_rejected"],
                "rate_limited": self._by_status["429"],
            }

    # -- HTTP --

    def _build_app(self) -> Starlette:
        """The Starlette app with Antavo's routes and the stand-in's inspection routes."""
        app = Starlette(
            routes=[
                Route("/events", self._post_event, methods=["POST"]),
                Route("/events/bulk", self._post_bulk, methods=["POST"]),
                Route("/customers/{customer}", self._get_customer, methods=["GET"]),
                *inspection_routes(self),
            ]
        )
        app.state.standin = self
        return app

    async def _post_event(self, request: Request) -> Response:
        return await self._handle(request, bulk=False)

    async def _post_bulk(self, request: Request) -> Response:
        return await self._handle(request, bulk=True)

    async def _get_customer(self, request: Request) -> Response:
        """GET /customers/{id}: a customer it knows, else Antavo's "Customer not found"."""
        return await self._handle(request, bulk=False, customer=request.path_params["customer"])

    def _customer(self, customer: str) -> Response:
        with self._lock:
            known = customer in (self.known_customers or ()) or any(
                e["customer"] == customer for e in self.events
            )
        if not known:
            raise customer_not_found()
        return json_response({"id": customer, "status": "active"})

    async def _handle(
        self, request: Request, *, bulk: bool, customer: str | None = None
    ) -> Response:
        """Auth, rate limit, faults, then the events themselves."""
        raw = await request.body()
        try:
            self._authenticate(request, raw)
            self._admit()
            self._inject_fault()
            if customer is not None:
                response = self._customer(customer)
            else:
                payload = parse_json(raw)
                response = self._bulk(payload) if bulk else self._single(payload)
        except Rejection as exc:
            response = json_response(exc.body(), exc.status, exc.headers)
        with self._lock:
            self._counts["requests"] += 1
            self._counts[f"path:{request.scope['path']}"] += 1
            self._by_status[str(response.status_code)] += 1
        return response


if __name__ == "__main__":
    from segment_sync.standins.antavo_cli import main

    raise SystemExit(main())
