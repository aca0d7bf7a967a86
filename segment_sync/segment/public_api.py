"""Segment Public API client: just what proves a workspace's region (the workspace, its sources).

The contract, from Segment's Public API reference (docs.segmentapis.com) and its generated SDKs
(segmentio/public-api-sdk-typescript `configureApis`/`configureEuApis`, -go, -python):

- one host per region: https://api.segmentapis.com (us) and https://eu1.api.segmentapis.com
  (eu); a workspace's token is served by its region's host only;
- auth: `Authorization: Bearer <token>` (Team and Business plans);
- `GET /` is the token's workspace (`data.workspace`: id, name, slug);
- `GET /sources?pagination[count]=N&pagination[cursor]=C` lists sources (`data.sources`, each
  with `writeKeys`, left empty for a token without the Source Admin permission) and
  `data.pagination` (`current`, `next` absent on the last page, `totalEntries`); count is
  1 to 200, cursors are opaque;
- errors: `{"errors": [{"type", "message", ...}]}` with the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import orjson

from segment_sync.http import ApiClient, RetryPolicy, is_retryable, parse_retry_after
from segment_sync.redaction import SecretUrl, reveal

PUBLIC_API_HOSTS = {"us": "https://api.segmentapis.com", "eu": "https://eu1.api.segmentapis.com"}
PAGE_SIZE = 200  # the largest `pagination[count]` the Public API takes
MAX_PAGES = 1000  # 200,000 sources: far past any workspace; a cursor that never ends is an error
_RETRY = RetryPolicy(max_retries=2, backoff_base_s=0.5, backoff_cap_s=5.0)
_UNREACHABLE_FIX = "the Segment Public API host is reachable (outbound.public_api_base_url)"
_ANSWER_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """One Public API answer: the status (None: no answer), its JSON, or what went wrong."""

    url: SecretUrl
    status: int | None
    body: Any = None
    error: str | None = None  # network error, or the errors' messages (secrets redacted)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        """The token is not one of this host's workspaces (or not a token at all)."""
        return self.status in (401, 403)

    def described(self) -> str:
        """`HTTP 503 at URL: message` or the network error, for the user."""
        if self.status is None:
            return f"no answer from {self.url}: {self.error}"
        said = f": {self.error}" if self.error else ""
        return f"HTTP {self.status} at {self.url}{said}"


@dataclass
class SourceSearch:
    """What paging through a workspace's sources found for one write key."""

    source: dict | None = None
    sources_seen: int = 0
    write_keys_seen: int = 0
    failure: ApiAnswer | None = None  # a page that could not be read
    pages: list[str] = field(default_factory=list)  # cursors asked for, in order


class PublicApiClient(ApiClient):
    """Asks the regional Public API hosts about the token's workspace."""

    def __init__(
        self, token: str, *, base_url: str | SecretUrl | None = None, timeout_s: float = 10.0
    ) -> None:
        """`base_url`: a "{region}" template (the stand-in); None: Segment's own hosts."""
        super().__init__(
            secrets=[token],
            timeout_s=timeout_s,
            max_connections=2,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._template = reveal(base_url) if base_url is not None else None

    def host(self, region: str) -> SecretUrl:
        """The region's Public API host (shown with any password masked)."""
        if self._template is None:
            return SecretUrl(PUBLIC_API_HOSTS[region])
        return SecretUrl(self._template.replace("{region}", region).rstrip("/"))

    async def workspace(self, region: str) -> ApiAnswer:
        """`GET /` at the region's host: the token's workspace, if that host serves it."""
        return await self._get(region, "/", {})

    async def find_source(self, region: str, write_key: str) -> SourceSearch:
        """Page through the workspace's sources for the one whose writeKeys hold the key."""
        search = SourceSearch()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"pagination[count]": str(PAGE_SIZE)}
            if cursor is not None:
                params["pagination[cursor]"] = cursor
            answer = await self._get(region, "/sources", params)
            page = _sources_page(answer)
            if page is None:
                unexpected = "an answer without data.sources, not the Public API's shape"
                search.failure = answer if not answer.ok else replace(answer, error=unexpected)
                return search
            sources, next_cursor = page
            search.pages.append(cursor or "")
            for source in sources:
                keys = source.get("writeKeys") or []
                search.sources_seen += 1
                search.write_keys_seen += len(keys)
                if write_key in keys and search.source is None:
                    search.source = source
            if search.source is not None or not next_cursor:
                return search
            if next_cursor in search.pages:
                break  # the same page again: stop rather than loop
            cursor = next_cursor
        search.failure = ApiAnswer(self.host(region), 200, None, "the sources' pages never end")
        return search

    async def _get(self, region: str, path: str, params: dict[str, str]) -> ApiAnswer:
        url = SecretUrl(self.host(region).reveal() + path)
        query = urlencode(params)
        target = SecretUrl(f"{url.reveal()}?{query}") if query else url

        async def attempt(number: int) -> tuple[ApiAnswer, float | None]:
            timed = await self.timed_request("GET", target, None, {}, fix=_UNREACHABLE_FIX)
            if timed.response is None:
                return ApiAnswer(url, None, None, timed.error), None
            response = timed.response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return _answer(url, response.status_code, response.content, self), retry_after

        answer, _ = await _RETRY.call(
            attempt,
            retryable=lambda result: is_retryable(result[0].status),
            retry_after=lambda result: result[1],
        )
        return answer


def _answer(url: SecretUrl, status: int, content: bytes, client: PublicApiClient) -> ApiAnswer:
    """The JSON body, and for an error the messages Segment put in `errors`."""
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if 200 <= status < 300:
        return ApiAnswer(url, status, body)
    errors = body.get("errors") if isinstance(body, dict) else None
    messages = [str(e.get("message") or e.get("type")) for e in errors or [] if isinstance(e, dict)]
    text = "; ".join(messages) or content[:_ANSWER_LIMIT].decode("utf-8", "replace")
    return ApiAnswer(url, status, body, client.redactor.text(text[:_ANSWER_LIMIT]))


def _sources_page(answer: ApiAnswer) -> tuple[list[dict], str | None] | None:
    """(sources, next cursor) of a readable page; None for an error or an unexpected body."""
    if not answer.ok:
        return None
    data = answer.body.get("data") if isinstance(answer.body, dict) else None
    sources = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, list):
        return None
    pagination = data.get("pagination") if isinstance(data.get("pagination"), dict) else {}
    next_cursor = pagination.get("next")
    if not isinstance(next_cursor, str):
        next_cursor = None
    return [s for s in sources if isinstance(s, dict)], next_cursor


def workspace_of(answer: ApiAnswer) -> dict[str, Any]:
    """`data.workspace` of a `GET /` answer ({} when the body does not have one)."""
    data = answer.body.get("data") if isinstance(answer.body, dict) else None
    workspace = data.get("workspace") if isinstance(data, dict) else None
    return workspace if isinstance(workspace, dict) else {}
