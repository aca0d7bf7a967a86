"""`settings check --connect`: does Segment accept the write key at the configured region?"""

from __future__ import annotations

import httpx

from segment_sync.redaction import Redactor
from segment_sync.settings import Settings


def check_write_key(settings: Settings, timeout_s: float = 10.0) -> str:
    """Send an empty batch (no data) with the write key; RuntimeError says what is wrong."""
    key = settings.write_key()
    redactor = Redactor([key])
    url = settings.outbound.endpoint + "/v1/batch"
    try:
        response = httpx.post(url, json={"batch": []}, auth=(key, ""), timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RuntimeError(
            redactor.text(f"cannot reach {url}: {type(exc).__name__}: {exc}")
        ) from None
    if response.status_code in (401, 403):
        raise RuntimeError(
            f"{url} refused the write key (HTTP {response.status_code}): check "
            f"{settings.outbound.write_key_env} holds the source's write key and that "
            f"outbound.region ({settings.outbound.region}) is the workspace's region. "
            f"Answer: {redactor.text(response.text[:300])}"
        )
    if response.status_code >= 300:
        raise RuntimeError(
            f"{url} answered HTTP {response.status_code}: {redactor.text(response.text[:300])}"
        )
    return f"write key accepted by {url} (region {settings.outbound.region})"
