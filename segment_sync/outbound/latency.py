"""Delivery latency quantiles in fixed memory, whatever the number of messages (pure)."""

from __future__ import annotations

import math

import numpy as np

# Bin i holds latencies in [GROWTH**(i-1), GROWTH**i) ms (bin 0: under 1 ms, clock skew
# included): a quantile is off by at most 1 %, and 2,000 bins reach past 100 days.
GROWTH = 1.01
BINS = 2_000
_LOG_GROWTH = math.log(GROWTH)


class LatencyHistogram:
    """Counts of latencies (ms) in log-spaced bins: 16 KB for one message or ten million."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = np.zeros(BINS, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.counts.sum())

    def add(self, latencies_ms: np.ndarray) -> None:
        """Count each latency (ms) once."""
        values = np.asarray(latencies_ms, dtype=np.float64)
        if not values.size:
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            bins = np.floor(np.log(np.maximum(values, 1.0)) / _LOG_GROWTH) + 1
        bins[values < 1.0] = 0
        self.counts += np.bincount(np.clip(bins, 0, BINS - 1).astype(np.int64), minlength=BINS)

    def quantile_ms(self, quantile: float) -> float | None:
        """The latency (ms) below which `quantile` of the counted ones lie; None if none."""
        total = len(self)
        if not total:
            return None
        rank = min(total - 1, max(0, math.ceil(quantile * total) - 1))
        index = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if index == 0:
            return 0.0
        return GROWTH ** (index - 0.5)  # the bin's middle, on the log scale
