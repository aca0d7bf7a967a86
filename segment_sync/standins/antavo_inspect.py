"""The Antavo stand-in's own routes (Antavo has nothing like them): health, what it registered,
its counters, reset, and its behaviour settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.antavo_wire import Rejection, bad_request, json_response, parse_json
from segment_sync.standins.labels import ANTAVO_STANDIN_LABEL as STANDIN_LABEL

if TYPE_CHECKING:
    from segment_sync.standins.antavo import AntavoStandin


def inspection_routes(standin: AntavoStandin) -> list[Route]:
    """`/healthz` and the `/_standin/*` routes of one stand-in."""

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok", "standin": STANDIN_LABEL})

    async def events(request: Request) -> Response:
        """Registered events, optionally filtered by `customer` and `action`."""
        params = request.query_params
        found = standin.registered(params.get("customer"), params.get("action"))
        return json_response({"events": found, "count": len(found)})

    async def stats(request: Request) -> Response:
        return json_response(standin.stats())

    async def reset(request: Request) -> Response:
        standin.reset()
        return json_response({"reset": True})

    async def config(request: Request) -> Response:
        """GET the config, or POST `{field: value}` changes."""
        if request.method == "GET":
            return json_response(standin.config())
        try:
            changes = parse_json(await request.body())
            if not isinstance(changes, dict):
                raise bad_request("Config must be a JSON object", code=113400)
            return json_response(standin.configure(**changes))
        except ValueError as exc:
            return json_response(bad_request(str(exc), code=113400).body(), 400)
        except Rejection as exc:
            return json_response(exc.body(), exc.status)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/_standin/events", events, methods=["GET"]),
        Route("/_standin/stats", stats, methods=["GET"]),
        Route("/_standin/reset", reset, methods=["POST"]),
        Route("/_standin/config", config, methods=["GET", "POST"]),
    ]
