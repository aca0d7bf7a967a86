"""Where `logs.dir: s3://bucket/prefix` points: the bucket, the prefix and the clients for it.

This is the one place that knows a logs location can be an object store. The entry points
(the writer, maintenance, the views) ask `is_object_store` once and hand the S3 work to
`s3_layout`, `s3_lease`, `s3_maintenance` and `s3_views`; a local `logs.dir` takes the code
paths it always took.

The URL carries no secret: credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, an instance role), read by pyarrow and
boto3 themselves and never by this code. The endpoint and region may be given in the URL
(`s3://logs/segment-sync?endpoint=http://127.0.0.1:9000&region=eu-west-1`) or by
AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and AWS_REGION / AWS_DEFAULT_REGION.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:  # pyarrow only once a filesystem is made: the settings check imports this
    import pyarrow.fs as pafs

S3_SCHEME = "s3://"
QUERY_KEYS = ("endpoint", "region")
_SECRET_KEYS = {"access_key", "secret_key", "session_token", "aws_access_key_id", "password"}
URL_HELP = "write logs.dir as s3://bucket/prefix[?endpoint=http://host:port&region=name]"


class LogsUrlError(ValueError):
    """logs.dir or the endpoint in the environment is malformed: one line naming the key and fix."""


def endpoint_problem(value: str, key: str) -> str | None:
    """Why `value` (from `key`) is no `http(s)://host[:port]` endpoint, or None; never echoes it."""
    parts = urlsplit(value)
    if "@" in value:
        return (
            f"{key} holds credentials, which do not belong in an endpoint; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead"
        )
    try:
        port_ok = parts.port != 0
    except ValueError:  # a port that is no number, or out of range
        port_ok = False
    if (
        not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return f"{key} must be http(s)://host[:port], e.g. http://minio:9000; {URL_HELP}"
    return None


def is_object_store(logs_dir: Path | str) -> bool:
    """Whether `logs_dir` names an object store (`s3://...`) rather than a folder."""
    return isinstance(logs_dir, str) and logs_dir.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Logs:
    """An S3 bucket and key prefix holding the log tables, laid out as a local `logs.dir`."""

    url: str
    bucket: str
    prefix: str  # without leading or trailing "/"; may be empty
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def parse(cls, url: str) -> S3Logs:
        """LogsUrlError (one line, naming the key and the fix) for a URL that names no bucket or
        holds a secret, or a malformed endpoint (in the URL or the environment)."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        secret = sorted(set(query) & _SECRET_KEYS)
        if secret or parts.username or parts.password:
            raise LogsUrlError(
                f"logs.dir: credentials do not belong in the URL ({secret[0] if secret else 'user'}"
                "); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead"
            )
        unknown = sorted(set(query) - set(QUERY_KEYS))
        if parts.scheme != "s3" or not parts.netloc or unknown:
            what = f"unknown option {unknown[0]!r}" if unknown else "no bucket"
            raise LogsUrlError(f"logs.dir {url.split('?')[0]!r}: {what}; {URL_HELP}")
        env = os.environ
        sources = (
            ("logs.dir ?endpoint=", _first(query.get("endpoint"))),
            ("AWS_ENDPOINT_URL_S3", env.get("AWS_ENDPOINT_URL_S3")),
            ("AWS_ENDPOINT_URL", env.get("AWS_ENDPOINT_URL")),
        )
        key, endpoint = next(((k, v) for k, v in sources if v), ("", None))
        problem = endpoint and endpoint_problem(endpoint, key)
        if problem:
            raise LogsUrlError(problem)
        region = _first(query.get("region")) or env.get("AWS_REGION")
        return cls(
            url=url,
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint,
            region=region or env.get("AWS_DEFAULT_REGION") or None,
        )

    def key(self, *parts: str) -> str:
        """The object key of `parts` under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def path(self, *parts: str) -> str:
        """`bucket/key`, the form pyarrow's S3 filesystem takes."""
        return f"{self.bucket}/{self.key(*parts)}"

    def key_of(self, path: str) -> str:
        """The object key of a pyarrow path (`bucket/key`)."""
        return path.removeprefix(f"{self.bucket}/")

    @cached_property
    def fs(self) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem for the bucket (credentials from the AWS chain)."""
        import pyarrow.fs as pafs

        # allow_delayed_open: a small file goes up as one PUT instead of a 3-request multipart
        # upload; a missing bucket is then reported when the file is closed, still as an error.
        options: dict[str, Any] = {
            "connect_timeout": 10,
            "request_timeout": 60,
            "allow_delayed_open": True,
        }
        if self.region:
            options["region"] = self.region
        if self.endpoint:
            endpoint = urlsplit(self.endpoint)
            options["endpoint_override"] = endpoint.netloc or endpoint.path
            options["scheme"] = endpoint.scheme or "https"
        return pafs.S3FileSystem(**options)

    @cached_property
    def client(self) -> Any:
        """A boto3 S3 client, for what pyarrow lacks: conditional writes (the lease)."""
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard"})
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region or "us-east-1", config=config
        )

    def __str__(self) -> str:
        return self.url


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def s3_logs(logs_dir: Path | str) -> S3Logs:
    """The S3Logs of an `s3://` logs.dir (LogsUrlError for a malformed one)."""
    return S3Logs.parse(str(logs_dir))
