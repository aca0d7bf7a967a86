"""Concurrent syncs share one gc setting: the last to finish restores what the process had."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from segment_sync.gc_pauses import RUN_THRESHOLDS, fewer_gc_pauses

HOST_THRESHOLDS = (700, 10, 10)


@pytest.fixture(autouse=True)
def _host_gc() -> Iterator[None]:
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(*HOST_THRESHOLDS)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def _sync(entered: threading.Event, leave: threading.Event, seen: list) -> threading.Thread:
    def run() -> None:
        with fewer_gc_pauses():
            entered.set()
            leave.wait(30)
            seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_overlapping_syncs_keep_the_settings_until_the_last_leaves_then_restore_them() -> None:
    first_in, second_in = threading.Event(), threading.Event()
    first_out, second_out = threading.Event(), threading.Event()
    first_seen: list = []
    second_seen: list = []
    first = _sync(first_in, first_out, first_seen)
    assert first_in.wait(30)
    second = _sync(second_in, second_out, second_seen)
    assert second_in.wait(30)
    first_out.set()  # the first to start finishes first, while the second still runs
    first.join(30)
    assert (gc.get_threshold(), gc.get_freeze_count() > 0) == (RUN_THRESHOLDS, True)
    second_out.set()
    second.join(30)
    assert first_seen == second_seen == [(RUN_THRESHOLDS, True)]
    assert (gc.get_threshold(), gc.get_freeze_count()) == (HOST_THRESHOLDS, 0)


def test_the_second_sync_freezes_nothing_of_the_first_ones_objects() -> None:
    first_in, first_out, second_in, second_out = (threading.Event() for _ in range(4))
    first = _sync(first_in, first_out, [])
    assert first_in.wait(30)
    frozen = gc.get_freeze_count()
    made_during_the_first = [object() for _ in range(1000)]
    second = _sync(second_in, second_out, [])
    assert second_in.wait(30)
    assert gc.get_freeze_count() <= frozen and made_during_the_first  # frees may lower it
    first_out.set()
    second_out.set()
    first.join(30)
    second.join(30)


def test_a_hosts_own_freeze_survives_the_syncs() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with fewer_gc_pauses():
        assert gc.get_threshold() == RUN_THRESHOLDS
    assert gc.get_threshold() == HOST_THRESHOLDS
    assert gc.get_freeze_count() > frozen // 2  # still frozen (a few since freed, not all)
