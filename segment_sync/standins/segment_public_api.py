"""LOCAL STAND-IN for the part of Segment's Public API the region check uses: tests and demo only.

Not Segment and never a production target. The contract it speaks, from Segment's Public API
reference (docs.segmentapis.com) and its generated SDKs (segmentio/public-api-sdk-typescript,
-go, -python):

- one host per region, https://api.segmentapis.com (us) and https://eu1.api.segmentapis.com
  (eu); a token belongs to one workspace, served by its region's host;
- `Authorization: Bearer <token>`; an unknown token gets 401;
- `GET /`: the token's workspace, `{"data": {"workspace": {"id", "name", "slug"}}}`;
- `GET /sources?pagination[count]=N&pagination[cursor]=C`: `{"data": {"sources": [...],
  "pagination": {"current", "next", "previous", "totalEntries"}}}`, N from 1 to 200 (else 422),
  `next` left out on the last page; each source with `id`, `slug`, `name`, `workspaceId`,
  `enabled`, `writeKeys` (empty for a token without the Source Admin permission), `labels`;
- errors: `{"errors": [{"type", "message", "field"?}]}`.

Where it simplifies: one process serves both regional hosts, each under a path prefix (`/us`,
`/eu`), so `outbound.public_api_base_url: http://HOST:PORT/{region}` points the client at it;
a token presented at the other region's prefix gets 401 (Segment does not document that answer:
it is this stand-in's reading, and the client reads 401 and 403 alike); only the two routes
above exist (anything else 404); cursors are the stand-in's own opaque strings. Inspection:
`GET /_standin/requests` (region, path, status; never a token), `GET /healthz`. Tokens and
write keys never appear in an answer but the sources' own `writeKeys`, or in a record.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segment_sync.standins.labels import SEGMENT_PUBLIC_API_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.labels import SEGMENT_REGIONS as REGIONS

MAX_PAGE = 200


@dataclass(frozen=True)
class StandinSource:
    """A source of a stand-in workspace."""

    id: str
    slug: str
    name: str
    write_keys: tuple[str, ...] = ()


@dataclass
class StandinWorkspace:
    """A workspace: its region, its sources, and its tokens (token -> has Source Admin)."""

    id: str
    slug: str
    name: str
    region: str
    sources: list[StandinSource] = field(default_factory=list)
    tokens: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"region must be us or eu, got {self.region!r}")


class _Refusal(Exception):
    def __init__(self, status: int, type_: str, message: str, field_: str | None = None) -> None:
        super().__init__(message)
        error = {"type": type_, "message": message} | ({"field": field_} if field_ else {})
        self.status, self.body = status, {"errors": [error]}


class SegmentPublicApiStandin:
    """LOCAL STAND-IN for the Public API's workspace and sources routes, both regions."""

    def __init__(self, workspaces: Iterable[StandinWorkspace]) -> None:
        self.workspaces = list(workspaces)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/_standin/requests", self._get_requests, methods=["GET"]),
                Route("/{region}", self._workspace, methods=["GET"]),
                Route("/{region}/", self._workspace, methods=["GET"]),
                Route("/{region}/sources", self._sources, methods=["GET"]),
            ]
        )
        self.app.state.standin = self

    def __repr__(self) -> str:
        """Workspace regions only: never tokens or keys."""
        return f"SegmentPublicApiStandin(regions={[w.region for w in self.workspaces]})"

    def request_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    async def _workspace(self, request: Request) -> Response:
        """`GET /`: the token's workspace."""

        def answer(workspace: StandinWorkspace, source_admin: bool) -> dict:
            return {
                "workspace": {"id": workspace.id, "name": workspace.name, "slug": workspace.slug}
            }

        return self._serve(request, answer)

    async def _sources(self, request: Request) -> Response:
        """`GET /sources`: one page of the workspace's sources."""

        def answer(workspace: StandinWorkspace, source_admin: bool) -> dict:
            count, offset = _pagination(request.query_params)
            page = workspace.sources[offset : offset + count]
            pagination: dict[str, Any] = {
                "current": _cursor(offset),
                "totalEntries": len(workspace.sources),
            }
            if offset + count < len(workspace.sources):
                pagination["next"] = _cursor(offset + count)
            if offset > 0:
                pagination["previous"] = _cursor(max(0, offset - count))
            sources = [_source_body(s, workspace, source_admin) for s in page]
            return {"sources": sources, "pagination": pagination}

        return self._serve(request, answer)

    def _serve(self, request: Request, answer) -> Response:
        """Region, token, then the route's answer; one record either way."""
        region = request.path_params["region"]
        try:
            if region not in REGIONS:
                raise _Refusal(404, "not-found", f"no such resource: {request.url.path}")
            workspace, source_admin = self._token_workspace(request, region)
            status, body = 200, {"data": answer(workspace, source_admin)}
        except _Refusal as refusal:
            status, body = refusal.status, refusal.body
        with self._lock:
            self.requests.append({"region": region, "path": request.url.path, "status": status})
        return Response(orjson.dumps(body), status, media_type="application/json")

    def _token_workspace(self, request: Request, region: str) -> tuple[StandinWorkspace, bool]:
        """The workspace this region's host serves for the bearer token, or 401."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            for workspace in self.workspaces:
                if token in workspace.tokens and workspace.region == region:
                    return workspace, workspace.tokens[token]
        raise _Refusal(401, "unauthorized", "the token is missing or not valid for this host")

    async def _get_requests(self, request: Request) -> Response:
        return Response(orjson.dumps(self.request_records()), media_type="application/json")

    async def _healthz(self, request: Request) -> Response:
        body = {"ok": True, "standin": "segment-public-api", "label": STANDIN_LABEL}
        return Response(orjson.dumps(body), media_type="application/json")


def _pagination(params) -> tuple[int, int]:
    """(count, offset) from `pagination[count]` and `pagination[cursor]`, or 422."""
    raw = params.get("pagination[count]")
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise _Refusal(
            422,
            "validation",
            f"pagination.count is required, a whole number from 1 to {MAX_PAGE}",
            "pagination.count",
        )
    cursor = params.get("pagination[cursor]")
    if cursor is None:
        return int(raw), 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "offset" or not offset.isdigit():
            raise ValueError(cursor)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise _Refusal(
            422, "validation", "pagination.cursor is not valid", "pagination.cursor"
        ) from None
    return int(raw), int(offset)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _source_body(source: StandinSource, workspace: StandinWorkspace, source_admin: bool) -> dict:
    return {
        "id": source.id,
        "slug": source.slug,
        "name": source.name,
        "workspaceId": workspace.id,
        "enabled": True,
        "writeKeys": list(source.write_keys) if source_admin else [],
        "metadata": {"id": "http-api", "slug": "http-api", "name": "HTTP API"},
        "settings": {},
        "labels": [],
    }


def workspace_with(
    region: str,
    token: str,
    write_keys: Iterable[str],
    *,
    name: str = "Loyalty",
    other_sources: int = 0,
    source_admin: bool = True,
) -> StandinWorkspace:
    """A workspace whose "Antavo" source holds `write_keys`, after `other_sources` others
    (so a check must page past them)."""
    sources = [
        StandinSource(f"src{i:04d}", f"other-{i}", f"Other source {i}", (f"other-key-{i:04d}",))
        for i in range(other_sources)
    ]
    sources.append(StandinSource("srcAntavo", "antavo", "Antavo", tuple(write_keys)))
    slug = name.lower().replace(" ", "-")
    return StandinWorkspace(f"ws-{slug}", slug, name, region, sources, {token: source_admin})


if __name__ == "__main__":
    from segment_sync.standins.segment_public_api_cli import main

    raise SystemExit(main())
