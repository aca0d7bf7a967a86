"""http_limits copies uvicorn's on_url and on_header (to count header bytes without an extra
call): the copy must still be uvicorn's, as pyproject allows any `uvicorn>=0.30`."""

from __future__ import annotations

import inspect
import textwrap

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn's own bodies (0.55.0, comments and blank lines dropped) that _EdgeHttpTools reproduces.
COPIED = {
    "on_url": ["self.url += url"],
    "on_header": [
        "name = name.lower()",
        'value = value.rstrip(b" \\t")',
        'if name == b"expect" and value.lower() == b"100-continue":',
        "    self.expect_100_continue = True",
        "self.headers.append((name, value))",
    ],
}


def _body(method: str) -> list[str]:
    source = textwrap.dedent(inspect.getsource(getattr(HttpToolsProtocol, method)))
    lines = [line for line in source.splitlines()[1:] if line.strip()]
    body = textwrap.dedent("\n".join(lines)).splitlines()
    return [line.rstrip() for line in body if not line.lstrip().startswith("#")]


def test_uvicorns_on_url_and_on_header_are_still_what_http_limits_copies() -> None:
    """Fails when a uvicorn upgrade changes them: update _EdgeHttpTools.on_url/on_header to the
    new code (a header check uvicorn adds would otherwise be silently skipped), then this list."""
    assert {method: _body(method) for method in COPIED} == COPIED
