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
- A sliding-window rate limit (requests per minute, answered 429 with Retry-After), random 500/503
  at `error_rate` from a seeded RNG, and queued one-shot faults (`fail_next`).
- Inspection: `GET /_standin/events`, `GET /_standin/stats`, `POST /_standin/reset`,
  `GET|POST /_standin/config`, `GET /healthz`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import count
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.antavo.escher import EscherAuthError, check_credentials, verify_request

log = logging.getLogger(__name__)

STANDIN_LABEL = "Antavo Events API LOCAL STAND-IN (not Antavo, never production)"
MAX_BULK_EVENTS = 50
FAULT_STATUSES = (500, 503)
DEFAULT_CREATING_ACTIONS = ("opt_in",)
_EVENT_FIELDS = ("customer", "action", "data", "account", "external_id")
_CONFIG_FIELDS = (
    "error_rate",
    "rate_limit_per_minute",
    "rate_limit_window_s",
    "known_customers",
    "creating_actions",
    "fail_next",
    "retry_after_s",
    "seed",
)


class _Rejection(Exception):
    """An Antavo error answer: HTTP status plus the `{"error": {type, code, message}}` body."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.message = status, type_, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Antavo's error envelope."""
        return {"error": {"type": self.type, "code": self.code, "message": self.message}}


def _bad_request(message: str, code: int = 113401) -> _Rejection:
    """400 BadRequestException."""
    return _Rejection(400, "BadRequestException", code, message)


def _customer_not_found() -> _Rejection:
    """Antavo's documented answer for an unknown customer."""
    return _Rejection(404, "NotFoundException", 160212, "Customer not found")


class AntavoStandin:
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
        unknown = sorted(set(changes) - set(_CONFIG_FIELDS))
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        parsed = {name: _parse_config(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in parsed.items():
                if name == "seed":
                    self._rng = random.Random(value)
                elif name == "fail_next":
                    self.fail_next.extend(value)
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
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/_standin/events", self._get_events, methods=["GET"]),
                Route("/_standin/stats", self._get_stats, methods=["GET"]),
                Route("/_standin/reset", self._post_reset, methods=["POST"]),
                Route("/_standin/config", self._config_route, methods=["GET", "POST"]),
            ]
        )
        app.state.standin = self
        return app

    async def _post_event(self, request: Request) -> Response:
        return await self._handle(request, bulk=False)

    async def _post_bulk(self, request: Request) -> Response:
        return await self._handle(request, bulk=True)

    async def _handle(self, request: Request, *, bulk: bool) -> Response:
        """Auth, rate limit, faults, then the events themselves."""
        raw = await request.body()
        try:
            self._authenticate(request, raw)
            self._admit()
            self._inject_fault()
            payload = _parse_json(raw)
            response = self._bulk(payload) if bulk else self._single(payload)
        except _Rejection as exc:
            response = _json(exc.body(), exc.status, exc.headers)
        with self._lock:
            self._counts["requests"] += 1
            self._counts[f"path:{request.scope['path']}"] += 1
            self._by_status[str(response.status_code)] += 1
        return response

    def _authenticate(self, request: Request, raw: bytes) -> None:
        """Escher-verify the request or raise a 401 rejection."""
        scope = request.scope
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            verify_request(
                request.method,
                path + (f"?{query}" if query else ""),
                headers,
                raw,
                self._credentials,
                self.stack,
            )
        except EscherAuthError as exc:
            raise _Rejection(
                401, "UnauthorizedException", 100401, f"Invalid API signature: {exc}"
            ) from None

    def _admit(self) -> None:
        """Sliding-window rate limit: 429 with Retry-After once the window is full."""
        with self._lock:
            limit, window_s = self.rate_limit_per_minute, self.rate_limit_window_s
            if limit is None:
                return
            now = time.monotonic()
            capacity = max(1, int(limit * window_s / 60.0))
            window = self._window
            while window and window[0] <= now - window_s:
                window.popleft()
            if len(window) < capacity:
                window.append(now)
                return
            retry_after = max(1, math.ceil(window[0] + window_s - now))
        raise _Rejection(
            429,
            "TooManyRequestsException",
            100429,
            f"API rate limit exceeded: {limit} requests per minute",
            {"Retry-After": str(retry_after)},
        )

    def _inject_fault(self) -> None:
        """A queued `fail_next` status, else a random 500/503 at `error_rate`."""
        with self._lock:
            if self.fail_next:
                status = self.fail_next.popleft()
            elif self.error_rate and self._rng.random() < self.error_rate:
                status = self._rng.choice(FAULT_STATUSES)
            else:
                return
            retry_after = _seconds_text(self.retry_after_s)
        if status == 429:
            raise _Rejection(
                429,
                "TooManyRequestsException",
                100429,
                "API rate limit exceeded (injected)",
                {"Retry-After": retry_after},
            )
        if status == 503:
            raise _Rejection(503, "ServiceUnavailableException", 100503, "Service unavailable")
        raise _Rejection(status, "InternalServerErrorException", 100500, "Internal server error")

    def _single(self, payload: Any) -> Response:
        """POST /events: register one event; answer a customer object."""
        event = self._register(payload)
        body = {"id": event["customer"], "status": "active", "events": [_event_summary(event)]}
        return _json(body)

    def _bulk(self, payload: Any) -> Response:
        """POST /events/bulk: register each event; per-event results in order."""
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events:
            raise _bad_request("Missing required parameter 'events'")
        if len(events) > MAX_BULK_EVENTS:
            raise _bad_request(
                f"Bulk request accepts at most {MAX_BULK_EVENTS} events, got {len(events)}",
                code=113402,
            )
        results: list[dict[str, Any]] = []
        for item in events:
            try:
                results.append({"events": [_event_summary(self._register(item))]})
            except _Rejection as exc:
                results.append(exc.body())
        errors = sum(1 for r in results if "error" in r)
        return _json({"results": results, "total": len(results), "errors": errors})

    def _register(self, item: Any) -> dict[str, Any]:
        """Validate, assign an ID, call `on_event`, keep it; the stored event, or a rejection."""
        try:
            event = self._validate(item)
        except _Rejection:
            with self._lock:
                self._counts["events_rejected"] += 1
            raise
        with self._lock:
            event_id = f"{int(time.time()) & 0xFFFFFFFF:08x}{self._id_prefix}"
            event_id += f"{next(self._id_counter) & 0xFFFFFF:06x}"
        if self.on_event is not None:
            try:
                self.on_event(dict(event), event_id)
            except Exception:
                log.exception("on_event failed for event %s", event_id)
                with self._lock:
                    self._counts["events_rejected"] += 1
                raise _Rejection(
                    500, "InternalServerErrorException", 100500, "Event could not be stored"
                ) from None
        stored = {"id": event_id, **event}
        with self._lock:
            if self.known_customers is not None:
                self.known_customers.add(event["customer"])
            self.events.append(stored)
            self._counts["events_registered"] += 1
        return stored

    def _validate(self, item: Any) -> dict[str, Any]:
        """The event's documented fields, or a 400/404 rejection."""
        if not isinstance(item, dict):
            raise _bad_request("Event must be a JSON object")
        for name in ("customer", "action"):
            value = item.get(name)
            if not isinstance(value, str) or not value:
                raise _bad_request(f"Missing required parameter '{name}'")
        data = item.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _bad_request("Parameter 'data' must be an object", code=113403)
        for name in ("account", "external_id"):
            if name in item and not isinstance(item[name], str):
                raise _bad_request(f"Parameter '{name}' must be a string", code=113403)
        with self._lock:
            known = self.known_customers
            if (
                known is not None
                and item["customer"] not in known
                and item["action"] not in self.creating_actions
            ):
                raise _customer_not_found()
        event = {name: item[name] for name in _EVENT_FIELDS if name in item}
        event["data"] = data
        return event

    async def _healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "standin": STANDIN_LABEL})

    async def _get_events(self, request: Request) -> Response:
        """Registered events, optionally filtered by `customer` and `action`."""
        params = request.query_params
        with self._lock:
            events = [
                e
                for e in self.events
                if all(params.get(k) in (None, e.get(k)) for k in ("customer", "action"))
            ]
        return _json({"events": events, "count": len(events)})

    async def _get_stats(self, request: Request) -> Response:
        return _json(self.stats())

    async def _post_reset(self, request: Request) -> Response:
        self.reset()
        return _json({"reset": True})

    async def _config_route(self, request: Request) -> Response:
        """GET the config, or POST `{field: value}` changes."""
        if request.method == "GET":
            return _json(self.config())
        try:
            changes = _parse_json(await request.body())
            if not isinstance(changes, dict):
                raise _bad_request("Config must be a JSON object", code=113400)
            return _json(self.configure(**changes))
        except ValueError as exc:
            return _json(_bad_request(str(exc), code=113400).body(), 400)
        except _Rejection as exc:
            return _json(exc.body(), exc.status)


def _parse_config(name: str, value: Any) -> Any:
    """A config value of the right type, or ValueError."""
    if name == "known_customers":
        if value is None:
            return None
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ValueError("known_customers must be a list of strings or null")
        return set(value)
    if name in ("creating_actions", "fail_next"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a list")
        items = list(value)
        if name == "creating_actions":
            if not all(isinstance(v, str) for v in items):
                raise ValueError("creating_actions must be a list of strings")
            return frozenset(items)
        if not all(isinstance(v, int) and 400 <= v <= 599 for v in items):
            raise ValueError("fail_next must be a list of HTTP error statuses (400-599)")
        return items
    if name == "seed":
        return None if value is None else int(value)
    if name == "rate_limit_per_minute":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("rate_limit_per_minute must be a positive integer or null")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    number = float(value)
    if name == "error_rate" and not 0.0 <= number <= 1.0:
        raise ValueError("error_rate must be between 0 and 1")
    if name in ("rate_limit_window_s", "retry_after_s") and number < 0:
        raise ValueError(f"{name} must not be negative")
    if name == "rate_limit_window_s" and number == 0:
        raise ValueError("rate_limit_window_s must be positive")
    return number


def _event_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as Antavo lists it in responses."""
    summary = {"id": event["id"], "action": event["action"]}
    points = event["data"].get("points")
    if isinstance(points, int | float) and not isinstance(points, bool):
        summary["points"] = points
    if "account" in event:
        summary["account"] = {"id": event["account"]}
    return summary


def _parse_json(raw: bytes) -> Any:
    """Parsed JSON body, or a 400 rejection."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad_request("Request body is not valid JSON", code=113400) from None


def _seconds_text(seconds: float) -> str:
    """Seconds as a short string: "1", "0.05"."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An orjson response labelled as coming from the stand-in."""
    return Response(
        orjson.dumps(body),
        status,
        {"X-Standin": "antavo", **(headers or {})},
        media_type="application/json",
    )


def run_antavo_standin(
    host: str,
    port: int,
    api_key: str,
    api_secret: str,
    stack: str = "test",
    *,
    known_customers: set[str] | None = None,
    rate_limit_per_minute: int | None = None,
    rate_limit_window_s: float = 60.0,
    error_rate: float = 0.0,
    seed: int | None = None,
    on_event: Callable[[dict, str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the stand-in with uvicorn until interrupted (blocking)."""
    standin = AntavoStandin(
        api_key,
        api_secret,
        stack=stack,
        known_customers=known_customers,
        rate_limit_per_minute=rate_limit_per_minute,
        rate_limit_window_s=rate_limit_window_s,
        error_rate=error_rate,
        seed=seed,
        on_event=on_event,
    )
    print(f"{STANDIN_LABEL}: stack {stack} on http://{host}:{port}", file=sys.stderr, flush=True)
    uvicorn.run(
        standin.app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off"
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the stand-in (secrets only through environment variables)."""
    parser = argparse.ArgumentParser(
        prog="python -m segment_sync.standins.antavo", description=STANDIN_LABEL
    )
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--stack", default="test", help="Antavo stack name the signatures are scoped to"
    )
    parser.add_argument(
        "--api-key-env",
        default="ANTAVO_API_KEY",
        metavar="ENV_VAR",
        help="env var holding the accepted API key",
    )
    parser.add_argument(
        "--api-secret-env",
        default="ANTAVO_API_SECRET",
        metavar="ENV_VAR",
        help="env var holding the API secret",
    )
    parser.add_argument(
        "--known-customer",
        action="append",
        default=None,
        metavar="ID",
        help="a customer that exists (repeatable; default: every customer)",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=None,
        help="answer 429 above this many requests per window",
    )
    parser.add_argument(
        "--rate-limit-window",
        type=float,
        default=60.0,
        dest="window_s",
        help="rate-limit window in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 500/503"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed, so injected faults repeat"
    )
    parser.add_argument(
        "--log-level", default="warning", help="uvicorn log level (default: %(default)s)"
    )
    parser.add_argument(
        "--loyalty-store",
        default=None,
        metavar="URL",
        help="register accepted events in this loyalty store (origin 'segment'), as Antavo would",
    )
    return parser


def _loyalty_sink(url: str | None) -> Callable[[dict, str], None] | None:
    if not url:
        return None
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.standins.loyalty_sink import LoyaltySink

    return LoyaltySink(LoyaltyStore(url))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read the credentials from the environment, run the stand-in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in (args.api_key_env, args.api_secret_env):
        if not os.environ.get(name):
            parser.error(f"environment variable {name} is not set")
    try:
        run_antavo_standin(
            args.host,
            args.port,
            os.environ[args.api_key_env],
            os.environ[args.api_secret_env],
            args.stack,
            known_customers=set(args.known_customer) if args.known_customer else None,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_limit_window_s=args.window_s,
            error_rate=args.error_rate,
            seed=args.seed,
            on_event=_loyalty_sink(args.loyalty_store),
            log_level=args.log_level,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
