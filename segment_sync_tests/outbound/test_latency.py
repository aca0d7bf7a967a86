"""Delivery latency quantiles are counted in fixed memory, within 1 % of the exact ones."""

from __future__ import annotations

import numpy as np

from segment_sync.outbound.latency import LatencyHistogram


def test_quantiles_are_within_one_percent_of_the_exact_ones():
    latencies = np.random.default_rng(3).lognormal(6, 1.5, 50_000)
    histogram = LatencyHistogram()
    for part in np.array_split(latencies, 7):  # one add per request
        histogram.add(part)
    for q in (0.01, 0.5, 0.95, 0.999, 1.0):
        exact = np.quantile(latencies, q, method="inverted_cdf")
        assert abs(histogram.quantile_ms(q) / exact - 1) <= 0.01, q


def test_its_memory_is_the_same_for_one_latency_or_a_million():
    histogram = LatencyHistogram()
    histogram.add(np.array([250.0]))
    size = histogram.counts.nbytes
    for _ in range(100):
        histogram.add(np.full(10_000, 1234.0))
    assert histogram.counts.nbytes == size and len(histogram) == 1_000_001


def test_latencies_under_a_millisecond_or_negative_count_as_zero():
    histogram = LatencyHistogram()
    histogram.add(np.array([-40.0, 0.2, 0.9]))
    assert histogram.quantile_ms(1.0) == 0.0 and len(histogram) == 3


def test_nothing_counted_has_no_quantile():
    assert LatencyHistogram().quantile_ms(0.5) is None
