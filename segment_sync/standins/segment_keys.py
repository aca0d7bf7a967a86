"""How the Segment stand-in treats a request's write key.

Segment's HTTP API documentation (Errors) says it "returns a 200 response for all API requests
except errors caused by large payloads and JSON errors", and that EU users sending to
`api.segment.io` "might not see any errors, but your events will not appear"; a 200 for an empty
or invalid write key has been reported too (segmentio/analytics-go#165). So by default the
stand-in answers 200 to a missing, unreadable, unknown or other-region key and DROPS the
request's messages, counting them only where a user could not look: `GET /_standin/dropped`.

`strict_auth=True` brings back this stand-in's old answer, 401: NOT Segment's documented
behaviour, kept only for tests of how a client handles a 401 should one ever come.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from segment_sync.standins.segment_wire import Rejection

MISSING_KEY = "missing_write_key"
UNKNOWN_KEY = "unknown_write_key"
WRONG_REGION = "wrong_region"
KEY_DROP_REASONS = (MISSING_KEY, UNKNOWN_KEY, WRONG_REGION)


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """A write key's region when the stand-in knows it, and why its messages are dropped."""

    region: str | None
    drop_reason: str | None = None


class WriteKeys:
    """The keys one regional endpoint knows, judged as Segment documents it or strictly."""

    def __init__(self, region: str, keys: dict[str, str], *, strict_auth: bool = False) -> None:
        self.region = region
        self._keys = dict(keys)
        self.strict_auth = strict_auth

    def __len__(self) -> int:
        return len(self._keys)

    def header_key(self, header: str | None) -> str | None:
        """The Basic-auth username (the write key), or None; strictly, 401 for an unreadable
        header. Segment documents Bearer (OAuth) headers too, the key then in the body."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            if self.strict_auth:
                raise Rejection(
                    401, "unauthorized", "only HTTP Basic auth with the write key is supported"
                )
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            if self.strict_auth:
                raise Rejection(
                    401, "unauthorized", "malformed Basic authorization header"
                ) from None
            return None
        return decoded.partition(":")[0] or None

    def verdict(self, key: str | None) -> KeyVerdict:
        """Accept a key of this region; drop the rest (strictly: 401)."""
        if not key:
            return self._refuse(
                KeyVerdict(None, MISSING_KEY),
                "missing write key: send it as the HTTP Basic username or as writeKey in the body",
            )
        region = self._keys.get(key)
        if region is None:
            return self._refuse(KeyVerdict(None, UNKNOWN_KEY), "unknown write key")
        if region != self.region:
            text = f"write key belongs to another region ({region}); this is the {self.region} endpoint"
            return self._refuse(KeyVerdict(region, WRONG_REGION), text, "wrong_region")
        return KeyVerdict(region)

    def _refuse(self, verdict: KeyVerdict, text: str, code: str = "unauthorized") -> KeyVerdict:
        if self.strict_auth:
            raise Rejection(401, code, text, region=verdict.region)
        return verdict
