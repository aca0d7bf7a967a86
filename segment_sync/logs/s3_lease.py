"""The maintenance lock on S3, where there is no flock: a lease object taken by a conditional write.

`PUT <prefix>/_leases/<table>.lease` with `If-None-Match: *` succeeds for exactly one of several
callers (S3 answers the others 412 Precondition Failed, or 409 while a competing write is in
flight). The object holds its owner and an expiry: a holder that died is replaced once the lease
expires, by a `PUT` with `If-Match: <etag>` of the expired lease, so two callers that both find
it expired cannot both take it. The holder renews it the same way before each step (LeaseLost if
someone else took it meanwhile) and deletes it with `If-Match` when done.

Expiry compares wall clocks of different machines: LEASE_TTL_S is far longer than one step of
maintenance, and clocks are expected to agree within seconds (NTP).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from segment_sync.logs.merge import TableBusy
from segment_sync.logs.object_store import S3Logs

LEASE_DIR = "_leases"
LEASE_TTL_S = 300.0
POLL_S = 0.2


class LeaseLost(RuntimeError):
    """Another maintainer took the lease after it expired; this one stops before its next step."""


class Lease:
    """A held lease on one table's maintenance; `renew()` before each step that changes files."""

    def __init__(self, logs: S3Logs, table: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.logs, self.table, self.ttl_s = logs, table, ttl_s
        self.key = logs.key(LEASE_DIR, f"{table}.lease")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires_at": time.time() + self.ttl_s}).encode()

    def try_acquire(self) -> bool:
        """Take the lease if it is free or expired; False if someone holds it."""
        put = self._put(IfNoneMatch="*")
        if put is not None:
            self.etag = put
            return True
        current = self._current()
        if current is None:  # released between our PUT and GET: try again next poll
            return False
        body, etag = current
        if body.get("expires_at", 0) > time.time():
            return False
        taken = self._put(IfMatch=etag)  # only one of those who saw it expired wins
        if taken is None:
            return False
        self.etag = taken
        return True

    def renew(self) -> None:
        """Push the expiry on; LeaseLost if the lease is no longer ours."""
        etag = self._put(IfMatch=self.etag) if self.etag else None
        if etag is None:
            raise LeaseLost(
                f"{self.table}: the maintenance lease expired and was taken by another maintainer"
            )
        self.etag = etag

    def release(self) -> None:
        """Delete the lease if it is still ours (a lease taken over is left to its new owner)."""
        if self.etag is None:
            return
        try:
            self.logs.client.delete_object(Bucket=self.logs.bucket, Key=self.key, IfMatch=self.etag)
        except self._client_error() as exc:
            if _status(exc) not in (404, 412):
                raise
        self.etag = None

    def _put(self, **condition: str) -> str | None:
        """A conditional PUT of the lease; its ETag, or None when the condition failed."""
        try:
            answer = self.logs.client.put_object(
                Bucket=self.logs.bucket, Key=self.key, Body=self._body(), **condition
            )
        except self._client_error() as exc:
            if _status(exc) in (404, 409, 412) and not _no_bucket(exc):  # taken, being taken,
                return None  # or gone (If-Match); a missing bucket is no busy lease
            raise
        return answer["ETag"]

    def _current(self) -> tuple[dict[str, Any], str] | None:
        try:
            answer = self.logs.client.get_object(Bucket=self.logs.bucket, Key=self.key)
        except self._client_error() as exc:
            if _status(exc) == 404 and not _no_bucket(exc):
                return None
            raise
        try:
            body = json.loads(answer["Body"].read())
        except ValueError:
            body = {}  # unreadable: treated as expired
        return body, answer["ETag"]

    def _client_error(self) -> type[Exception]:
        return self.logs.client.exceptions.ClientError


def held_by(logs: S3Logs, table: str) -> str:
    """What `table`'s lease says: its owner and expiry, for a person to find the holder."""
    current = Lease(logs, table)._current()
    if current is None:
        return "nothing now (it was just released)"
    body = current[0]
    expires = body.get("expires_at")
    when = (
        datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
        if isinstance(expires, int | float)
        else "unknown"
    )
    return f"owner {body.get('owner', 'unknown')}, expires at {when}"


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _no_bucket(exc: Any) -> bool:
    """S3's 404 for a bucket that does not exist (a wrong logs.dir), not for a missing lease."""
    return exc.response.get("Error", {}).get("Code") == "NoSuchBucket"


@contextmanager
def lease(
    logs: S3Logs, table: str, timeout_s: float, ttl_s: float = LEASE_TTL_S
) -> Iterator[Lease]:
    """Hold `table`'s maintenance lease; TableBusy if another holder keeps it `timeout_s`."""
    held = Lease(logs, table, ttl_s)
    deadline = time.monotonic() + timeout_s
    while not held.try_acquire():
        if time.monotonic() >= deadline:
            raise TableBusy(table, timeout_s)
        time.sleep(POLL_S)
    try:
        yield held
    finally:
        held.release()
