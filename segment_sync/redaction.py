"""Keep secrets (write keys, API keys, signatures, auth headers) out of logs and errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset(
    {"authorization", "x-signature", "x-ems-auth", "x-antavo-auth", "cookie"}
)


# scheme://user:PASSWORD@host: greedy up to the last @ before the path, as a password may hold @.
# Quotes and commas end it too, so a URL inside a JSON body never swallows the next field.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"',]*:)([^\s/\"',]+)@")


def mask_url_passwords(text: str) -> str:
    """Every URL's password replaced, e.g. postgresql://u:[REDACTED]@host/db."""
    if "://" not in text or "@" not in text:
        return text
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class Redactor:
    """Replaces every known secret value in text; knows nothing of where the text goes."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str | None) -> str | None:
        """`value` with every known secret, and every URL password, replaced."""
        if value is None:
            return None
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return mask_url_passwords(value)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k: REDACTED if k.lower() in SECRET_HEADERS else (self.text(v) or "")
            for k, v in headers.items()
        }
