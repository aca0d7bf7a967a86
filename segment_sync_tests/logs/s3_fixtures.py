"""The object-storage tests' S3: moto's server in its own process on a free port, a fresh
bucket per test, and the AWS variables a writer or maintainer process needs to reach it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from segment_sync.logs.object_store import S3Logs

# Test credentials for the local server only; real ones come from the environment.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def new_logs_url(self, prefix: str = "segment-sync/logs") -> str:
        """`s3://<new bucket>/<prefix>?endpoint=...`, the bucket created empty."""
        bucket = f"logs-{uuid.uuid4().hex[:12]}"
        url = f"s3://{bucket}/{prefix}?endpoint={self.endpoint}"
        S3Logs.parse(url).client.create_bucket(Bucket=bucket)
        return url


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, started for the module and stopped after it."""
    saved = {name: os.environ.get(name) for name in S3_ENV}
    os.environ.update(S3_ENV)
    proc = subprocess.Popen(
        [sys.executable, "-m", "segment_sync_tests.logs.s3_server"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **S3_ENV},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the S3 server did not start: {line!r}")
        yield S3Server(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_url(s3_server: S3Server) -> str:
    """A logs.dir on a fresh bucket of the module's S3 server."""
    return s3_server.new_logs_url()


READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
    ],
}


def _set_auth(endpoint: str, free_requests: str) -> None:
    """moto's switch: after `free_requests` more requests, every request is authorised by IAM."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_requests.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@pytest.fixture
def refusing_s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """The module's S3 server checking every request against IAM, with this process holding the
    keys of a user whose policy only reads: a write or delete is answered 403 AccessDenied, as
    real S3 does for a wrong policy. Open again after the test."""
    iam = boto3.client("iam", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user, PolicyName="read-only", PolicyDocument=json.dumps(READ_ONLY_POLICY)
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # boto3 caches the keys it first read
    _set_auth(s3_server.endpoint, "0")
    try:
        yield s3_server
    finally:
        _set_auth(s3_server.endpoint, "inf")
