"""GroupCommit records every answered request, also one whose run a stop signal cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

from segment_sync.inbound.group_commit import GroupCommit, Outcomes
from segment_sync.inbound.ingest_result import IngestResult


def outcomes(item_id: int) -> Outcomes:
    return Outcomes(rows=[{"item": item_id}], done=[(item_id, [])], failed=[], retry=[])


def test_requests_answered_during_a_write_share_the_next_one():
    writes: list[list[int]] = []
    first_write_started = threading.Event()
    go_on = threading.Event()

    def write(taken: list[Outcomes], result: IngestResult) -> None:
        first_write_started.set()
        go_on.wait(10)
        writes.append([o.done[0][0] for o in taken])

    async def main() -> None:
        commits = GroupCommit(write)
        result = IngestResult("run-1", 10)
        first = asyncio.create_task(commits.submit(outcomes(1), result))
        await asyncio.to_thread(first_write_started.wait, 10)
        later = [asyncio.create_task(commits.submit(outcomes(i), result)) for i in (2, 3)]
        await asyncio.sleep(0)
        go_on.set()
        await asyncio.gather(first, *later)

    asyncio.run(main())
    assert writes == [[1], [2, 3]]


def test_a_cancelled_submission_is_recorded_before_it_unwinds():
    written: list[int] = []
    write_started = threading.Event()
    go_on = threading.Event()

    def write(taken: list[Outcomes], result: IngestResult) -> None:
        write_started.set()
        go_on.wait(10)
        written.extend(o.done[0][0] for o in taken)

    async def main() -> BaseException | None:
        commits = GroupCommit(write)
        result = IngestResult("run-1", 10)
        sends = [asyncio.create_task(commits.submit(outcomes(i), result)) for i in (1, 2)]
        await asyncio.to_thread(write_started.wait, 10)
        for send in sends:  # what a stop signal does to the run's sends
            send.cancel()
        await asyncio.sleep(0)
        go_on.set()
        for send in sends:
            with pytest.raises(asyncio.CancelledError):
                await send
            assert written  # the write finished before the cancelled send unwound
        return commits._writer.exception()

    drain_error = asyncio.run(main())
    assert sorted(written) == [1, 2]
    assert drain_error is None  # was InvalidStateError: an answer set on a cancelled future


def test_a_groups_marks_start_only_after_its_log_rows_are_written():
    events: list[str] = []
    first_marks_started = threading.Event()
    go_on = threading.Event()

    def write(taken: list[Outcomes], result: IngestResult) -> None:
        ids = [o.done[0][0] for o in taken]
        events.append(f"log {ids}")

    def mark(taken: list[Outcomes], result: IngestResult) -> None:
        ids = [o.done[0][0] for o in taken]
        if ids == [1]:
            first_marks_started.set()
            go_on.wait(10)
        events.append(f"mark {ids}")

    async def main() -> None:
        commits = GroupCommit(write, mark)
        result = IngestResult("run-1", 10)
        first = asyncio.create_task(commits.submit(outcomes(1), result))
        await asyncio.to_thread(first_marks_started.wait, 10)
        second = asyncio.create_task(commits.submit(outcomes(2), result))
        while "log [2]" not in events:  # the next group's log rows, while the marks run
            await asyncio.sleep(0.01)
        assert not first.done() and not second.done()  # neither is marked yet
        go_on.set()
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert events == ["log [1]", "log [2]", "mark [1]", "mark [2]"]


def test_a_failed_log_write_marks_nothing_of_its_group():
    marked: list[int] = []

    def write(taken: list[Outcomes], result: IngestResult) -> None:
        if any(o.done[0][0] == 2 for o in taken):
            raise OSError("disk full")

    def mark(taken: list[Outcomes], result: IngestResult) -> None:
        marked.extend(o.done[0][0] for o in taken)

    async def main() -> None:
        commits = GroupCommit(write, mark)
        result = IngestResult("run-1", 10)
        await commits.submit(outcomes(1), result)
        with pytest.raises(OSError):
            await commits.submit(outcomes(2), result)
        await commits.submit(outcomes(3), result)

    asyncio.run(main())
    assert marked == [1, 3]
