"""A request on the lean path, as httpx would make it: its headers, its response's request."""

from __future__ import annotations

import httpx


class LeanResponse(httpx.Response):
    """A lean path's response: its request, which httpx's send sets (response.url and
    raise_for_status() need it), is made when first asked for, not per request (~20 µs)."""

    _lean_request: tuple[str, httpx.URL]

    @classmethod
    def adopt(cls, response: httpx.Response, method: str, url: httpx.URL) -> None:
        response.__class__ = cls
        response._lean_request = (method, url)  # type: ignore[attr-defined]

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request(*self._lean_request)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def chunked(headers: dict[str, str]) -> bool:
    """Whether the caller set Transfer-Encoding (the lean path sends a bytes body as given)."""
    return any(name.lower() == "transfer-encoding" for name in headers)


def lean_headers(
    client_headers: list[tuple[bytes, bytes]],
    method: str,
    url: httpx.URL,
    content: bytes | None,
    headers: dict[str, str],
) -> list[tuple[bytes, bytes]]:
    """The headers httpx's build_request sends (tested against it): the client's, the
    call's replacing those of the same name, then Host and Content-Length when not given."""
    given = [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]
    names = {k.lower() for k, _ in given}
    merged = [(k, v) for k, v in client_headers if k.lower() not in names]
    merged += given
    names.update(k.lower() for k, _ in merged)
    if content and b"content-length" not in names:
        merged.append((b"Content-Length", str(len(content)).encode()))
        names.add(b"content-length")
    auto = []
    if b"host" not in names and url.host:
        auto.append((b"Host", url.netloc))
    framed = b"content-length" in names or b"transfer-encoding" in names
    if not framed and method in ("POST", "PUT", "PATCH"):
        auto.append((b"Content-Length", b"0"))
    return auto + merged
