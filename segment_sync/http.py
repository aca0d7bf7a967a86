"""The HTTP layer both API clients share: one retry policy, one client lifecycle, timed posts.

Modelled on dlt's `rest_client`: the clients say what an answer means (delivered, rejected,
retryable); this module decides when to try again and records how long each attempt took.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Self

import httpx

from segment_sync import LIBRARY_NAME, __version__
from segment_sync.lean_request import LeanResponse, chunked, lean_headers
from segment_sync.lean_transport import CUT_SHORT, LeanTransport
from segment_sync.redaction import Redactor, SecretUrl

# The retry policy lives in retry_policy.py; its names are re-exported for the clients.
from segment_sync.retry_policy import MAX_RETRY_AFTER_S as MAX_RETRY_AFTER_S
from segment_sync.retry_policy import RETRYABLE_STATUSES as RETRYABLE_STATUSES
from segment_sync.retry_policy import RetryPolicy as RetryPolicy
from segment_sync.retry_policy import is_retryable as is_retryable
from segment_sync.retry_policy import parse_retry_after as parse_retry_after

# The most of an answer's body read: Segment and Antavo answer in bytes to kilobytes; a server
# sending more is not the API (a portal, a proxy) and must not hold the run's memory.
MAX_ANSWER_BYTES = 1 << 20
# Parsed request URLs a client keeps (a client posts to a handful: its API's paths).
_PARSED_URLS_KEPT = 64
USER_AGENT = f"{LIBRARY_NAME}/{__version__}"

# Raised before any byte of the request can have left (no connection was made): only these
# are surely unsent. After a read timeout or a connection closed mid-answer the server may
# have acted on the request.
UNSENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,  # no HTTPError: caught beside them in timed_request
)


@dataclass(frozen=True, slots=True)
class TimedPost:
    """One request (a POST, mostly): when it started, how long it took, and the response or the network error."""

    started_at: datetime
    elapsed_s: float
    response: httpx.Response | None
    # Redacted. Set when `response` is None (no answer: a network error or the deadline), and
    # with a response whose body passed the cap (`cut_short`): it holds the first bytes only.
    error: str | None
    cut_short: bool = False
    cause: str | None = None  # the network error alone (`error` without the advice), redacted
    error_type: type[Exception] | None = None  # the network error's class

    @property
    def surely_unsent(self) -> bool:
        """Did the network error come before the request could be written (see UNSENT_ERRORS)?"""
        return self.error_type is not None and issubclass(self.error_type, UNSENT_ERRORS)


def _environment_proxies() -> bool:
    """Is an HTTP(S) proxy configured in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY)?"""
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


class ApiClient:
    """An httpx connection pool with the secrets it must never show; close with `aclose`."""

    def __init__(
        self,
        *,
        secrets: Iterable[str],
        timeout_s: float,
        max_connections: int,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        lean: bool = False,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        deadline_s: float | None = None,
        url_auth: bool = True,
    ) -> None:
        """`lean`: HTTP/1.1 through LeanTransport (a fraction of httpcore's CPU per request),
        unless the environment names a proxy (then httpx's own transports, which route it).
        `timeout_s` bounds each connect and read; `deadline_s` (default twice `timeout_s`) each
        whole request, connect to last byte. Longer than the connect timeout, so a connect that
        hangs ends as a ConnectTimeout (nothing sent, retried), never as the deadline (which
        leaves an Antavo request's outcome unknown)."""
        self.redactor = Redactor(list(secrets))
        self.deadline_s = 2 * timeout_s if deadline_s is None else deadline_s
        self.max_answer_bytes = max_answer_bytes
        # httpx routes environment proxies only when it builds its own transport.
        lean = lean and not _environment_proxies()
        transport = (
            LeanTransport(max_connections=max_connections, max_body_bytes=max_answer_bytes)
            if lean
            else None
        )
        # Without auth, a lean client's requests skip httpx's client layers (see _send_lean).
        self._lean = transport if auth is None else None
        # `url_auth=False`: never the URL's user:password@ as Basic auth (httpx's default with no
        # client auth), for a client whose credentials are its headers, lean path or not.
        self._auth = auth if auth is not None or url_auth else httpx.Auth()
        self._parsed_urls: dict[str, httpx.URL] = {}  # httpx parses a URL in ~30 µs
        self._http = httpx.AsyncClient(
            auth=auth,
            transport=transport,
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": USER_AGENT, **(headers or {})},
        )

    async def _send_lean(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response:
        """`self._http.request` straight through the lean transport: the same request on the
        wire (the headers httpx's build_request would send, see `lean_headers`; its timeouts)
        and the same read response, without the client's auth flow, redirect and cookie
        handling (these clients have no auth, follow no redirects, and their APIs set no
        cookies; a Set-Cookie is not sent back) nor httpx's request model. Less CPU a request,
        and no reference cycle (httpx binds its response and stream to each other)."""
        assert self._lean is not None
        clock = time.perf_counter()
        if self._http.is_closed:  # as httpx's send says it: a programming error, not the network
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        parsed = self._parsed_urls.get(url)
        if parsed is None:
            if len(self._parsed_urls) >= _PARSED_URLS_KEPT:
                self._parsed_urls.clear()
            parsed = self._parsed_urls[url] = httpx.URL(url)
        if (content is not None and not isinstance(content, bytes)) or chunked(headers):
            # A stream, or a body the caller asked to send chunked: httpx frames it.
            request = self._http.build_request(method, parsed, content=content, headers=headers)
            response = await self._lean.handle_async_request(request)
            response.request = request
            body = None
        else:
            method = method.upper()
            response, body = await self._lean.send(
                method,
                parsed,
                lean_headers(self._http.headers.raw, method, parsed, content, headers),
                content or b"",
                self._http.timeout.as_dict(),
            )
            LeanResponse.adopt(response, method, parsed)
        try:
            if body is not None and self._lean.max_body_bytes == self.max_answer_bytes:
                # Its content as it came, already cut at the cap by the transport: what
                # read_capped would make of it, without httpx's decoder machinery.
                response._content = body
                response.is_stream_consumed = True  # as httpx's read leaves them
                response._num_bytes_downloaded = len(body)
            else:
                # Decoded up to the cap: the transport counts the bytes on the wire, and a
                # small gzip answer can inflate to gigabytes (httpx asks for gzip and deflate).
                await read_capped(response, self.max_answer_bytes)
        finally:
            await response.aclose()
        # httpx's send sets it when the response is closed; its getter raises until then.
        response.elapsed = timedelta(seconds=time.perf_counter() - clock)
        if "charset" not in response.headers.get("Content-Type", "").lower():
            # What httpx's text would find after parsing Content-Type (slowly: 10 µs) for a
            # charset: none, so the default.
            response.encoding = response.default_encoding  # type: ignore[assignment]
        return response

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def timed_post(
        self, url: str | SecretUrl, content: bytes, headers: dict[str, str], *, fix: str
    ) -> TimedPost:
        """POST once; a network error becomes text naming `fix` (the settings to check), with
        the URL's password masked."""
        return await self.timed_request("POST", url, content, headers, fix=fix)

    async def timed_request(
        self,
        method: str,
        url: str | SecretUrl,
        content: bytes | None,
        headers: dict[str, str],
        *,
        fix: str,
    ) -> TimedPost:
        """One request, timed; a network error becomes text naming `fix`, passwords masked."""
        where = SecretUrl(url)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            # httpx's read timeout restarts with every byte: a server dripping its answer would
            # hold the request (and the run) for as long as it likes without this deadline.
            async with asyncio.timeout(self.deadline_s):
                if self._lean is not None:
                    response = await self._send_lean(method, where.reveal(), content, headers)
                else:
                    response = await self._send_capped(method, where.reveal(), content, headers)
        # InvalidURL is no HTTPError: a URL httpx cannot parse (its port a piece of a password).
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
            if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
                cause = f"{type(exc).__name__}: {exc or 'no answer'}"
            else:
                cause = f"Timeout: no whole answer within twice timeout_s ({self.deadline_s:g} s)"
            cause = Redactor(where.passwords_and_pieces()).text(cause)
            error = self.redactor.text(f"{cause} ({method} {where}: check that {fix})")
            elapsed = time.perf_counter() - clock
            cause = self.redactor.text(cause)
            return TimedPost(started, elapsed, None, error, cause=cause, error_type=type(exc))
        elapsed = time.perf_counter() - clock
        cut = response.extensions.get(CUT_SHORT)
        if cut is None:
            return TimedPost(started, elapsed, response, None)
        error = (
            f"HTTP {response.status_code} answer cut short: its body is over the "
            f"{self.max_answer_bytes:,}-byte limit ({cut}); the rest was not read "
            f"({method} {where})"
        )
        return TimedPost(started, elapsed, response, self.redactor.text(error), cut_short=True)

    async def _send_capped(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response:
        """`self._http.request`, its body read up to `max_answer_bytes` (over it, the response
        holds the first bytes and says so in `extensions[CUT_SHORT]`)."""
        request = self._http.build_request(method, url, content=content, headers=headers)
        auth = httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth
        response = await self._http.send(request, stream=True, auth=auth)
        try:
            await read_capped(response, self.max_answer_bytes)
        finally:
            await response.aclose()  # a body left unread closes the connection, never reused
        return response


async def read_capped(response: httpx.Response, cap: int) -> None:
    """Read a streamed response's body, at most `cap` bytes of it (decoded). A lean
    transport's cut (on the bytes as they came) stands, and what it kept is decoded capped."""
    cut_by_transport = CUT_SHORT in response.extensions
    declared = response.headers.get("Content-Length", "")
    if not cut_by_transport and declared.isdigit() and int(declared) > cap:
        response._content = b""  # as httpx's own aread sets it
        response.extensions[CUT_SHORT] = f"Content-Length {int(declared):,}"
        return
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > cap:
            response._content = b"".join(parts)
            response.extensions.setdefault(CUT_SHORT, f"more than {cap:,} bytes arrived")
            return
        parts.append(part)
    response._content = b"".join(parts)
