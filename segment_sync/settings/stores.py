"""Where the data lives: the customer-ID mapping, the loyalty store and the logs folder."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator

from segment_sync.redaction import SecretUrl
from segment_sync.settings.base import Section
from segment_sync.settings.values import DatabaseUrl


class GeneralSettings(Section):
    customer_id_mapping: Literal["customer_id", "external_customer_id"] = "customer_id"


class LoyaltyStoreSettings(Section):
    url: DatabaseUrl = SecretUrl("sqlite:///loyalty.db")


class LogsSettings(Section):
    # A folder (local or NFS), or s3://bucket/prefix[?endpoint=...&region=...] (credentials from
    # the AWS environment variables; see docs/deploying/object-storage.md).
    dir: str = "logs"
    retention_days: int = Field(default=90, ge=1, le=36_500)

    @field_validator("dir")
    @classmethod
    def _object_store_url(cls, value: str) -> str:
        if value.startswith("s3://"):
            from segment_sync.logs.object_store import endpoint_problem  # no pyarrow import

            parts = urlsplit(value)
            options = parse_qs(parts.query, keep_blank_values=True)
            if parts.username or parts.password or set(options) - {"endpoint", "region"}:
                raise ValueError(
                    "an s3:// logs.dir takes only ?endpoint= and ?region=; credentials come "
                    "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                )
            if not parts.netloc:
                raise ValueError("no bucket: write s3://bucket/prefix")
            endpoint = (options.get("endpoint") or [""])[0]
            problem = endpoint and endpoint_problem(endpoint, "its ?endpoint=")
            if problem:
                raise ValueError(problem)
        return value
