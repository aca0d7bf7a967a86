"""A writer shared by threads (the CLI's follow threads): a flush returns only once every row
queued before it is on disk, also rows a flush in another thread took first, and raises when
they could not be written. A slow disk is a real write held back until the test lets it go."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from segment_sync.logs import store
from segment_sync.logs.store import LogWriteError, LogWriter
from segment_sync.logs.views import connect
from segment_sync_tests.disks import fill_disk
from segment_sync_tests.logs.test_log_store import message, scalar


def _slow_disk(writer: LogWriter) -> tuple[threading.Event, threading.Event]:
    """The writer's file writes wait for `release`; `inside` is set when one is waiting."""
    inside, release = threading.Event(), threading.Event()
    publish = writer._publish

    def held_back(table, day, part):
        inside.set()
        assert release.wait(30), "the test never let the write go"
        return publish(table, day, part)

    writer._publish = held_back
    return inside, release


def _rows_on_disk(logs_dir: Path) -> int:
    with connect(logs_dir) as con:
        return scalar(con, "SELECT count(*) FROM outbound_messages")


def _flush_in_thread(writer: LogWriter, outcome: list) -> threading.Thread:
    def flush() -> None:
        try:
            writer.flush()
            outcome.append("returned")
        except (LogWriteError, ValueError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=flush)
    thread.start()
    return thread


def test_a_flush_returns_once_the_rows_another_flush_took_are_written(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "logs")
    inside, release = _slow_disk(writer)
    writer.extend("outbound_messages", [message("a")])  # one thread's row
    writer.extend("outbound_messages", [message("b")])  # another's, queued before a flush
    first_outcome: list = []
    first = _flush_in_thread(writer, first_outcome)  # takes both rows, then waits on the disk
    assert inside.wait(30)
    seen: list[int] = []

    def second_flush() -> None:  # finds nothing queued: its row is in the first flush
        writer.flush()
        seen.append(_rows_on_disk(tmp_path / "logs"))

    second = threading.Thread(target=second_flush)
    second.start()
    second.join(1.0)  # not a timing check: the old writer had returned here, with 0 on disk
    release.set()
    first.join(30)
    second.join(30)
    assert first_outcome == ["returned"]
    assert seen == [2]


def test_a_flush_raises_when_another_flush_failed_to_write_its_rows(small_tmpfs: Path) -> None:
    logs_dir = small_tmpfs / "logs"
    writer = LogWriter(logs_dir)
    inside, release = _slow_disk(writer)
    writer.extend("outbound_messages", [message(f"m{i}") for i in range(2000)])
    filler = fill_disk(small_tmpfs)
    first_outcome, second_outcome = _second_flush_while_first_held(writer, inside, release)
    assert isinstance(first_outcome[0], LogWriteError)
    assert [type(o) for o in second_outcome] == [LogWriteError]  # not a success: nothing written
    assert "No space left on device" in str(second_outcome[0])

    filler.unlink()
    writer.flush()
    assert _rows_on_disk(logs_dir) == 2000  # put back, then written: nothing lost


def test_a_flush_raises_when_another_flush_dropped_the_rows_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows that cannot be a table are dropped with the batch they are in (a ValueError naming
    them): a flush whose row was in that batch must not return as if it were written."""
    writer = LogWriter(tmp_path / "logs")
    inside, release = threading.Event(), threading.Event()
    real = store.to_arrow

    def held_back(table, rows):
        inside.set()
        assert release.wait(30), "the test never let the conversion go"
        return real(table, rows)

    monkeypatch.setattr(store, "to_arrow", held_back)
    writer.extend("outbound_messages", [message("mine")])
    writer.extend("outbound_messages", [message("theirs", timestamp="not a time")])
    first_outcome, second_outcome = _second_flush_while_first_held(writer, inside, release)
    assert "dropped" in str(first_outcome[0])
    assert isinstance(second_outcome[0], ValueError), second_outcome
    assert "not written" in str(second_outcome[0])


def _second_flush_while_first_held(
    writer: LogWriter, inside: threading.Event, release: threading.Event
) -> tuple[list, list]:
    """A flush held inside its write (`inside` set), a second flush started meanwhile, then
    both let go: what each returned or raised."""
    first_outcome: list = []
    first = _flush_in_thread(writer, first_outcome)
    assert inside.wait(30)
    second_outcome: list = []
    second = _flush_in_thread(writer, second_outcome)
    second.join(1.0)
    release.set()
    first.join(30)
    second.join(30)
    return first_outcome, second_outcome
