"""The heartbeat that keeps an ingest run's buffer claims (leases) alive while its process lives."""

from __future__ import annotations

import logging
import threading

from segment_sync.inbound.buffer import InboundBuffer

log = logging.getLogger(__name__)


class LeaseHeartbeat:
    """Renews `run_id`'s claims every `lease_s / 3` on its own thread.

    A thread, not a task on the run's event loop: a run whose loop is busy or stalled (a slow log
    write, a long parse) is still alive and must keep its items; only a dead process stops renewing,
    and then another run takes its items over once `lease_s` has passed.
    """

    def __init__(self, buffer: InboundBuffer, run_id: str, lease_s: float) -> None:
        self.buffer, self.run_id = buffer, run_id
        self.interval_s = lease_s / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-heartbeat-{run_id}", daemon=True
        )

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.buffer.renew(self.run_id)
            except Exception as exc:  # retried at the next beat; the lease has slack for two
                log.warning("could not renew the buffer leases of run %s: %s", self.run_id, exc)
