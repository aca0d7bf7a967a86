"""How the receiver is served cheaply: `POST /segment` past Starlette's stack, and the collector.

Both only take CPU away from a request; what the request must pass (authentication, limits,
durable storage before the answer) is the receiver's and unchanged.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable

from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

GC_THRESHOLDS = (20_000, 20, 20)  # the serving process's; see tune_collector


def tune_collector() -> None:
    """Freeze what exists at start-up and collect young objects less often (the server's process).

    Start-up objects (modules, the app) live as long as the process, yet every full collection
    walked all ~60,000 of them (about 40 ms each, ~8 us per single-event request under load).
    A batch's parsed events (JSON trees, ~10 containers an event, freed by reference counting,
    no cycles) set off a young collection every 700 of them: 10-17 % of a batch's CPU. Cyclic
    garbage is still collected, after 20,000 net new containers instead of 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class ReceiverApp(Starlette):
    """Starlette, with `POST /segment` answered without its middleware and routing.

    A single-event request spent about 12 of its 28 us of app-level CPU (storage aside) passing
    through Starlette's error and exception middleware, router and `Request`; the route is still declared (other
    methods get 405 from Starlette, other paths 404). What the endpoint raises goes to the
    server, which logs it and answers 500 (Starlette's ServerErrorMiddleware did the same).
    """

    def __init__(self, segment: Callable[[Scope, Receive], Awaitable[Response]], **kwargs) -> None:
        super().__init__(**kwargs)
        self._segment = segment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and get_route_path(scope) == "/segment"
        ):
            scope["app"] = self
            response = await self._segment(scope, receive)  # raised: uvicorn answers 500
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
