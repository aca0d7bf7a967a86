"""The maintenance lease on S3: one holder at a time, by conditional writes, without flock."""

from __future__ import annotations

import time

import pytest

from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_lease import Lease, LeaseLost, lease


def test_a_held_lease_keeps_a_second_maintainer_out_until_released(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    first, second = Lease(logs, "outbound_log"), Lease(logs, "outbound_log")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()


def test_leases_of_different_tables_do_not_exclude_each_other(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    assert Lease(logs, "outbound_log").try_acquire()
    assert Lease(logs, "inbound_log").try_acquire()


def test_waiting_for_a_held_lease_ends_in_a_timeout_naming_the_table(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    assert Lease(logs, "sync_runs").try_acquire()
    waiting = lease(logs, "sync_runs", timeout_s=0.5)
    with pytest.raises(TimeoutError, match="sync_runs: another compaction or retention"):
        waiting.__enter__()


def test_an_expired_lease_is_taken_over_by_exactly_one_contender(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    dead = Lease(logs, "outbound_log", ttl_s=0.2)
    assert dead.try_acquire()
    time.sleep(0.5)
    contenders = [Lease(logs, "outbound_log") for _ in range(3)]
    assert [c.try_acquire() for c in contenders].count(True) == 1


def test_a_holder_whose_lease_was_taken_over_stops_at_its_next_renewal(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    slow = Lease(logs, "outbound_log", ttl_s=0.2)
    assert slow.try_acquire()
    time.sleep(0.5)
    assert Lease(logs, "outbound_log").try_acquire()
    with pytest.raises(LeaseLost):
        slow.renew()


def test_releasing_a_lease_taken_over_leaves_the_new_owners_lease(s3_url: str) -> None:
    logs = S3Logs.parse(s3_url)
    slow = Lease(logs, "outbound_log", ttl_s=0.2)
    assert slow.try_acquire()
    time.sleep(0.5)
    new_owner = Lease(logs, "outbound_log")
    assert new_owner.try_acquire()
    slow.release()
    assert not Lease(logs, "outbound_log").try_acquire()
