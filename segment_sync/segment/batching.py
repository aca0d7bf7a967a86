"""Group messages into /v1/batch requests under Segment's limits (pure)."""

from __future__ import annotations

import numpy as np

from segment_sync.segment.message_columns import BATCH_PREFIX

# Segment documents "500 KB" per request. Read as 500,000 bytes, the stricter of 500,000 and
# 512,000 (its analytics-python stops at 475,000 because it estimates; this measures), counted
# on the uncompressed JSON body exactly as sent: `{"batch":[`, the messages and their commas,
# and `],"sentAt":"..."}`.
MAX_REQUEST_BYTES = 500_000
MAX_MESSAGES_PER_REQUEST = 2500
_SUFFIX_TEMPLATE = b'],"sentAt":"0000-00-00T00:00:00.000Z"}'


def envelope_size(count: int) -> int:
    """Bytes a request adds around `count` message bodies (brackets, commas, sentAt)."""
    return len(BATCH_PREFIX) + len(_SUFFIX_TEMPLATE) + max(count - 1, 0)


def request_bounds(
    sizes: np.ndarray,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_count: int = MAX_MESSAGES_PER_REQUEST,
) -> list[tuple[int, int]]:
    """[start, stop) ranges of consecutive messages whose request stays within both limits.

    Greedy, as full as the limits allow, from a running sum of sizes: each message adds its
    size plus one comma, and the envelope adds the rest. Messages must each fit a request on
    their own (the 32 KB per-message check comes first); ValueError names the one that does not.
    """
    count = len(sizes)
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64) + 1)
    budget = max_bytes - envelope_size(0) + 1  # the last message has no comma
    bounds: list[tuple[int, int]] = []
    start, base = 0, 0
    while start < count:
        stop = min(int(np.searchsorted(ends, base + budget, side="right")), start + max_count)
        if stop <= start:
            raise ValueError(
                f"message {start} is {int(sizes[start])} bytes and cannot fit a "
                f"{max_bytes}-byte request"
            )
        bounds.append((start, stop))
        base, start = int(ends[stop - 1]), stop
    return bounds
