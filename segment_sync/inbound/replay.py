"""Re-queue failed buffered webhook events, after a fix, for the next ingest run."""

from __future__ import annotations

from collections.abc import Callable

from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.inbound.buffer_rows import FAILED, UNKNOWN
from segment_sync.logs.filters import FilterError
from segment_sync.logs.time_window import parse_time


def replay_inbound(
    buffer: InboundBuffer,
    text: str | None = None,
    since: str | None = None,
    until: str | None = None,
    echo: Callable[[str], None] = print,
    include_unknown: bool = False,
) -> int:
    """Re-queue the failed buffered items that match; prints and returns how many.

    `since`/`until` (ISO, `now`, or `30m`/`1h`/`7d` ago) bound when the item failed; a bad time
    raises FilterError with the fix. Items of unknown outcome (Antavo may have registered them)
    are left alone unless `include_unknown`.
    """
    start = parse_time(since) if since else None
    end = parse_time(until, end_of_day=True) if until else None
    if start is not None and end is not None and start >= end:
        raise FilterError(f"--since ({start.isoformat()}) must be earlier than --until")
    count = buffer.requeue_failed(text, start, end, include_unknown=include_unknown)
    counts = buffer.counts()
    what = "failed or unknown-outcome" if include_unknown else "failed"
    echo(
        f"re-queued {count} {what} inbound item(s) (attempts reset); {counts[FAILED]} failed "
        "item(s) left as they were. The next inbound run (sensor, or `segment-sync run inbound`) "
        "delivers them"
    )
    if counts[UNKNOWN] and not include_unknown:
        echo(
            f"{counts[UNKNOWN]} item(s) with an unknown outcome were not re-queued: Antavo may "
            "have registered them already. Check them in Antavo; pass --include-unknown to send "
            "them again (each one Antavo already has is then registered twice)"
        )
    return count
