"""The logs tests' shared fixtures: the local S3 server of the object-storage tests."""

from segment_sync_tests.logs.s3_fixtures import s3_server, s3_url  # noqa: F401
