"""Writers of one SQLite file take turns: the second waits for the first, and never forever."""

from __future__ import annotations

import threading
from pathlib import Path

from segment_sync.locks import WriterTurns


def test_a_second_writer_gets_its_turn_only_when_the_first_gives_it_back(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db.write-turn"
    first, second = WriterTurns(path), WriterTurns(path)  # two open files: as two processes
    entered = threading.Event()

    def write() -> None:
        with second.turn():
            entered.set()

    with first.turn():
        thread = threading.Thread(target=write)
        thread.start()
        assert not entered.wait(0.3)
    assert entered.wait(10)
    thread.join(10)
    first.close()
    second.close()


def test_a_writer_waits_at_most_wait_s_then_goes_ahead(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db.write-turn"
    holder, impatient = WriterTurns(path), WriterTurns(path, wait_s=0.05)
    with holder.turn(), impatient.turn():
        pass  # SQLite's own lock still keeps the write safe
    holder.close()
    impatient.close()
