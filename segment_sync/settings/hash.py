"""Which settings a run used: a short hash of the settings' effective values, secrets left out.

The input is the validated settings (defaults filled in, relative paths resolved), not the file's
bytes, so a comment or a reordering changes nothing and a changed default shows. Secrets never
enter it: the file holds only the NAMES of the variables with secrets (`*_env`), and their values
are not read; URL settings enter with their password masked (`redact_url`); and any known secret
value that still appears in a setting's text is masked before hashing. So a new write key or
database password gives the same hash; a changed threshold, region, mapping or variable name
gives another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from segment_sync.redaction import Redactor, SecretUrl, redact_url
from segment_sync.settings.root import Settings

HASH_CHARS = 16  # 64 bits of sha256: enough to tell two settings apart, short enough to read


def effective_values(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON values, every URL password masked."""
    return _plain(settings)


def hash_input(settings: Settings) -> str:
    """The canonical text that is hashed: sorted keys, no secret value in it."""
    text = json.dumps(
        effective_values(settings),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,  # YAML dates and the like in mapping literals
    )
    return Redactor(settings.secrets()).text(text) or ""


def settings_hash(settings: Settings) -> str:
    """The first HASH_CHARS hex digits of the sha256 of `hash_input`."""
    return hashlib.sha256(hash_input(settings).encode()).hexdigest()[:HASH_CHARS]


def _plain(value: Any) -> Any:
    if isinstance(value, SecretUrl):
        return redact_url(value)
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
