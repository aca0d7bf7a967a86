"""`stops_deferred` holds SIGINT and SIGTERM through a short write and raises them after it; the
third signal (or a second SIGTERM) acts at once, so a hung write can still be stopped.

Real signals, raised in this process: `signal.raise_signal` runs the handler before it returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from segment_sync.signals import stops_deferred

INT, TERM = signal.SIGINT, signal.SIGTERM


class Stop(BaseException):
    """What a raising SIGTERM handler raises (as Dagster's interrupt handler does)."""


def raise_stop(signum: int, frame: object) -> None:
    raise Stop()


@pytest.fixture
def terms() -> Iterator[list[str]]:
    """A SIGTERM handler that notes each SIGTERM and raises nothing."""
    seen: list[str] = []
    previous = signal.signal(TERM, lambda signum, frame: seen.append("SIGTERM"))
    try:
        yield seen
    finally:
        signal.signal(TERM, previous)
        signal.signal(INT, signal.default_int_handler)


def test_a_signal_held_by_a_nested_block_goes_to_the_outer_one_and_out_after_it():
    said: list[str] = []
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), stops_deferred(lambda: said.append("outer")) as outer:
        with stops_deferred(lambda: said.append("inner")) as inner:
            signal.raise_signal(INT)
            assert said == ["inner", "outer"]  # at once, not once the inner write is done
            steps.append("inner written")
        steps.append("outer written")
        assert inner == [INT] and outer == [INT]
    assert steps == ["inner written", "outer written"]
    assert signal.getsignal(INT) is signal.default_int_handler


def test_off_the_main_thread_nothing_is_held_or_installed():
    seen: list[object] = []

    def flush() -> None:
        try:
            with stops_deferred() as held:
                seen.append(signal.getsignal(INT))
                seen.append(list(held))
        except BaseException as exc:  # noqa: BLE001 - the test reads it below
            seen.append(exc)

    thread = threading.Thread(target=flush)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler, []]


def test_sigint_and_sigterm_held_together_are_both_raised_after_the_block(terms: list[str]):
    with pytest.raises(KeyboardInterrupt), stops_deferred() as held:
        signal.raise_signal(INT)
        signal.raise_signal(TERM)
        assert terms == []  # held
    assert held == [INT, TERM]
    assert terms == ["SIGTERM"]  # not lost to SIGINT's KeyboardInterrupt


def test_the_third_signal_acts_at_once_and_nothing_is_raised_again_after(capfd):
    steps: list[int] = []
    with pytest.raises(KeyboardInterrupt) as raised, stops_deferred():
        for step in range(3):
            signal.raise_signal(INT)
            steps.append(step)
    assert steps == [0, 1]  # the third cut the (hung) write
    assert raised.value.__context__ is None  # raised once: the block's exit raised nothing more
    assert signal.getsignal(INT) is signal.default_int_handler
    assert capfd.readouterr().err.count("queued log rows may not be written") == 1


def test_a_second_sigterm_acts_at_once():
    previous = signal.signal(TERM, raise_stop)
    steps: list[int] = []
    try:
        with pytest.raises(Stop), stops_deferred(redeliver=False):
            for step in range(2):
                signal.raise_signal(TERM)
                steps.append(step)
    finally:
        signal.signal(TERM, previous)
    assert steps == [0]


def test_the_third_signal_in_a_nested_write_reaches_the_outermost_handler(capfd, terms):
    said: list[str] = []
    steps: list[int] = []
    with (
        pytest.raises(KeyboardInterrupt),
        stops_deferred(lambda: said.append("finishing"), redeliver=False),
        stops_deferred(),  # the log flush inside a run's record
    ):
        for step, signum in enumerate((INT, TERM, INT)):
            signal.raise_signal(signum)
            steps.append(step)
    assert steps == [0, 1] and said == ["finishing"]
    assert terms == []  # the block's exit raised no held SIGTERM after the escalation
    assert signal.getsignal(INT) is signal.default_int_handler
    assert capfd.readouterr().err.count("queued log rows may not be written") == 1


def test_a_closed_stderr_in_on_first_does_not_cut_the_block():
    def say_finishing() -> None:
        raise BrokenPipeError(32, "Broken pipe")  # `... 2>&1 | head -1` has exited

    steps: list[str] = []
    with stops_deferred(say_finishing, redeliver=False) as held:
        signal.raise_signal(INT)
        steps.append("written")
    assert steps == ["written"] and held == [INT]
