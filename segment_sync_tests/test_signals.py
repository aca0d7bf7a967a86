"""A stop signal ends a `run_stoppably` run cleanly, even where a raising handler (Dagster's, or
Python's Ctrl-C) would land inside an event-loop callback, where asyncio logs and drops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = '''
import asyncio, signal, sys
from segment_sync.signals import run_stoppably


class Stop(BaseException):
    """What the handler raises, as Dagster's DagsterExecutionInterruptedError is."""


def raise_stop(signum, frame):
    raise Stop()


if sys.argv[1] == "raising-handler":
    signal.signal(signal.SIGTERM, raise_stop)


def busy(loop):
    sum(range(20000))  # the main thread spends nearly all its time in loop callbacks
    loop.call_soon(busy, loop)


async def main():
    loop = asyncio.get_running_loop()
    for _ in range(4):
        loop.call_soon(busy, loop)
    try:
        print("ready", flush=True)
        while True:
            await asyncio.sleep(0.01)
    finally:
        print("cleaned up", flush=True)


try:
    run_stoppably(main())
except (Stop, KeyboardInterrupt) as exc:
    print(f"stopped by {type(exc).__name__}", flush=True)
    sys.exit(3)
'''


@pytest.mark.parametrize(
    ("handler", "signum", "stopped_by"),
    [
        ("raising-handler", signal.SIGTERM, "Stop"),  # today: dropped, the run goes on
        ("python-default", signal.SIGINT, "KeyboardInterrupt"),
    ],
)
def test_a_stop_signal_cancels_the_run_then_raises_the_handlers_exception(
    tmp_path: Path, handler: str, signum: int, stopped_by: str
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    child = subprocess.Popen(
        [sys.executable, str(probe), handler], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "ready\n"
    time.sleep(0.5)  # well inside the busy callbacks

    child.send_signal(signum)

    try:
        output, _ = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("the signal was dropped: the run went on")
    assert child.returncode == 3
    assert output == f"cleaned up\nstopped by {stopped_by}\n"  # unwound first, then raised


def test_the_first_stop_signal_ends_a_follow_and_a_second_is_handled_as_before():
    import os
    import threading

    from segment_sync.signals import first_stop_ends_following

    stop_following = threading.Event()
    with first_stop_ends_following(stop_following) as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # a deploy: the follow ends, nothing raised
        assert stop_following.is_set() and stop.signal == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second stop: Python's Ctrl-C, at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
