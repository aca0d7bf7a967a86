"""What an outbound run did: its counts, its result, and the errors that stop it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from segment_sync.loyalty.records import Stream
from segment_sync.outbound.latency import LatencyHistogram
from segment_sync.settings import Settings


@dataclass
class OutboundCounts:
    """What a run did; every source row lands in exactly one of the message counters."""

    rows_read: int = 0
    not_allow_listed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    # Of `pending`: in requests Segment refused that the split budget left with several messages.
    # Progress moved past them, so only reconciliation or a replay sends them again.
    unnarrowed: int = 0
    requests: int = 0
    retries: int = 0
    bytes: int = 0

    def add(self, other: OutboundCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class OutboundResult:
    stream: Stream
    run_id: str
    watermark_before: int
    watermark_after: int
    upto: int
    counts: OutboundCounts = field(default_factory=OutboundCounts)
    error: str | None = None
    error_status: int | None = None  # HTTP status of the request that stopped the run, if any
    # Milliseconds from each delivered message's event time to Segment's 2xx (see `latency_s`),
    # counted in fixed memory: a run's memory must not grow with its backlog.
    latencies: LatencyHistogram = field(default_factory=LatencyHistogram, repr=False)
    passes: int = 0  # store polls that found rows to send (1 without follow)
    destination: str | None = None  # with several destinations, the one sent to

    @property
    def label(self) -> str:
        """The stream, and its destination when there are several: `events@eu`."""
        return (
            self.stream.value
            if self.destination is None
            else f"{self.stream.value}@{self.destination}"
        )

    def latency_s(self, quantile: float) -> float | None:
        """A quantile of event time -> Segment 2xx over the delivered messages, in seconds."""
        ms = self.latencies.quantile_ms(quantile)
        return None if ms is None else ms / 1000

    @property
    def ok(self) -> bool:
        return self.error is None


class StreamDisabled(RuntimeError):
    """The stream's allow-list is empty: nothing is read, the watermark stays where it is."""


class OutboundFailed(RuntimeError):
    """The run could not deliver everything; what it did not deliver stays pending."""

    def __init__(self, result: OutboundResult) -> None:
        self.result = result
        super().__init__(result.error)


CONFIGURATION_STATUSES = (401, 403, 404)


def configuration_error(settings: Settings, status: int | None) -> str | None:
    """One line naming the settings to fix when Segment refused the key or the endpoint."""
    if status not in CONFIGURATION_STATUSES:
        return None
    outbound = settings.outbound
    return (
        f"Segment refused the request with HTTP {status} at {outbound.endpoint}: check that "
        f"the environment variable {outbound.write_key_env} (outbound.write_key_env) holds this "
        f"source's write key and that outbound.region ({outbound.region}) is the workspace's "
        "region (or fix outbound.base_url); not the data's fault, nothing was marked failed"
    )
