"""Maintenance table by table: one table that cannot be maintained never stops the others."""

from __future__ import annotations

import errno
import logging
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from segment_sync.logs.s3_lease import LeaseLost
from segment_sync.logs.schema import TABLES
from segment_sync.logs.store import LogWriteError
from segment_sync.redaction import error_kind, mask_url_passwords

T = TypeVar("T")
log = logging.getLogger(__name__)
# What maintenance can meet and says in words: a refused write, a busy or lost lock, a file.
_FORESEEN = (LogWriteError, LeaseLost, TimeoutError, OSError)
# A local folder a person must fix: no permission (chmod, chattr), a read-only or full disk,
# a path component that is a file, a folder where a file belongs. Another run meets the same
# until someone acts.
_FOLDER_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
}
# What S3 answers when the credentials, the policy or the bucket name are wrong: boto3's
# ClientError codes (the lease) and pyarrow's S3FileSystem OSError text (the files).
_S3_REFUSALS = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "NoSuchBucket",
}
_PYARROW_S3_REFUSAL = re.compile(
    r"AWS Error \[?(ACCESS_DENIED|INVALID_ACCESS_KEY_ID|SIGNATURE_DOES_NOT_MATCH|"
    r"NO_SUCH_BUCKET|EXPIRED_TOKEN|INVALID_TOKEN)"
)
S3_FIX = (
    "check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the "
    "instance role) and the bucket's policy (list, get, put and delete under the logs prefix), "
    "and that the bucket in logs.dir exists"
)
FOLDER_FIX = (
    "fix the permissions of logs.dir and the folders under it (the user running Dagster "
    "must create, write and delete files there), free space, move away a file that stands "
    "where a folder belongs (or a folder where a file does), or point logs.dir elsewhere"
)


class MaintenanceIncomplete(Exception):
    """Some tables could not be maintained; `report` holds what was done for the others."""

    def __init__(
        self, report: list, failures: dict[str, BaseException], quarantined: list[Path]
    ) -> None:
        self.report = report
        self.failures = failures
        # Damaged files the failed tables moved aside before failing: no later run names them.
        self.quarantined = quarantined
        done = ", ".join(r.table for r in report) or "none"
        problems = "; ".join(f"{table}: {describe(exc)}" for table, exc in failures.items())
        fixes = dict.fromkeys(f for f in map(person_fix, failures.values()) if f)
        then = (
            f"To fix: {'; '.join(fixes)}; the next run maintains what this one could not"
            if fixes
            else "The next run maintains what this one could not"
        )
        super().__init__(
            f"could not maintain {len(failures)} log table(s) ({problems}); the others were "
            f"maintained ({done}). No row was lost: an input file is deleted only after its "
            f"merged file is published. {then}"
        )

    @property
    def kind(self) -> str:
        """The run's failure kind: "configuration" when a person must act for any table (wrong
        credentials or policy, a missing bucket, a folder's permissions, a full or read-only
        disk), so the run is not retried into the same refusal; else "transient"."""
        kinds = {failure_kind(exc) for exc in self.failures.values()}
        return "configuration" if "configuration" in kinds else "transient"

    @property
    def disk_refused(self) -> bool:
        """Whether a table failed because logs.dir refused a write (full, read-only)."""
        return any(isinstance(exc, LogWriteError) for exc in self.failures.values())


def failure_kind(exc: BaseException) -> str:
    """A failed run's kind for `exc`: "configuration" when a person must act (not retried into
    the same refusal), else "transient". One rule for maintenance and for every LogWriteError."""
    return "configuration" if person_fix(exc) else "transient"


def person_fix(exc: BaseException) -> str | None:
    """What a person must do about `exc`, or None when a later run may simply succeed."""
    if isinstance(exc, LogWriteError):  # its cause decides: a network error or 503 SlowDown
        return person_fix(exc.cause)  # on S3, or EIO, passes; a refusal or a full disk stays
    if _s3_code(exc) in _S3_REFUSALS:
        return S3_FIX
    if isinstance(exc, OSError | pa.ArrowException) and _PYARROW_S3_REFUSAL.search(str(exc)):
        return S3_FIX
    if isinstance(exc, OSError) and exc.errno in _FOLDER_ERRNOS:
        return FOLDER_FIX
    return None


def _s3_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError (its `response`), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def describe(exc: BaseException) -> str:
    """What went wrong, without payload: our own errors say it; an OS or S3 error keeps its
    text (paths, no rows) with any URL password masked; anything else only its kind."""
    if isinstance(exc, _FORESEEN) or _s3_code(exc):  # an S3 answer: code, operation, message
        return f"{type(exc).__name__}: {mask_url_passwords(str(exc))}"
    return error_kind(exc)


def each_table(maintain: Callable[[str, list[Path]], T]) -> list[T]:
    """`maintain(table, moved)` every log table in turn (`moved`: where it lists the damaged
    files it moves aside); MaintenanceIncomplete after the last if any failed."""
    report: list[T] = []
    failures: dict[str, BaseException] = {}
    quarantined: list[Path] = []
    for table in TABLES:
        moved: list[Path] = []
        try:
            report.append(maintain(table, moved))
        except Exception as exc:  # noqa: BLE001 - raised below, with the tables that were done
            failures[table] = exc
            quarantined += moved
            if not isinstance(exc, _FORESEEN) and not _s3_code(
                exc
            ):  # a bug: the run tells its kind, the log where
                where = "".join(traceback.format_tb(exc.__traceback__))  # frames, no values
                log.error(
                    "could not maintain log table %s: %s at\n%s", table, error_kind(exc), where
                )
    if failures:
        raise MaintenanceIncomplete(report, failures, quarantined)
    return report
