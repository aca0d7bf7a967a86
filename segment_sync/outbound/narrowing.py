"""Send a chunk's messages as /v1/batch requests; a refused request is split until only the
messages Segment refuses are left (the plan is `segment.splitting`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from segment_sync.segment.batching import request_bounds
from segment_sync.segment.client import BatchOutcome, Verdict
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.splitting import MAX_SPLIT_REQUESTS, Part, SplitPlan

# Sends one request of these messages: its outcome (None when it was not sent) and body bytes.
SendRequest = Callable[[MessageColumns], Awaitable[tuple[BatchOutcome | None, int]]]


@dataclass(slots=True)
class Sent:
    """One request of a chunk and what Segment answered."""

    part: Part
    group: MessageColumns
    outcome: BatchOutcome | None  # None: never sent (an earlier request failed for good)
    size: int  # body bytes
    split: bool = False  # refused, then resent as two halves: its messages are in later requests
    note: str | None = None  # why a refused request of several messages was not split further
    # Refused with several messages when the split budget ran out: which of them Segment
    # refuses is not known, so none is failed; they stay pending (reconcile/replay narrows on).
    unsettled: bool = False

    @property
    def refused(self) -> bool:
        return self.outcome is not None and self.outcome.verdict is Verdict.REJECTED


async def send_narrowing(messages: MessageColumns, send: SendRequest) -> list[Sent]:
    """Every request made for `messages`, in rounds: each round resends the halves of the
    requests Segment refused in the one before. Each message is in exactly one request that
    is not `split`: the one that delivered, refused or left it pending."""
    plan = SplitPlan(request_bounds(messages.sizes))

    async def send_part(part: Part) -> Sent:
        group = messages.slice(part.start, part.stop)
        outcome, size = await send(group)
        return Sent(part, group, outcome, size)

    requests: list[Sent] = []
    round_ = plan.first
    while round_:
        answered = await asyncio.gather(*(send_part(p) for p in round_))
        requests.extend(answered)
        refused = {sent.part: sent for sent in answered if sent.refused}
        round_, final = plan.after_refusal(list(refused))
        for sent in refused.values():
            sent.split = True
        for part in final:
            sent = refused[part]
            sent.split, sent.note = False, _refusal_note(part, len(plan.first[part.origin]))
            sent.unsettled = len(part) > 1
    return requests


def _refusal_note(part: Part, batch: int) -> str | None:
    """What the split found out about a part Segment still refuses."""
    if len(part) == 1:
        return f"refused alone (found by splitting its request of {batch})" if batch > 1 else None
    return (
        f"not narrowed to single messages: splitting its request of {batch} used the budget of "
        f"{MAX_SPLIT_REQUESTS} extra requests (many messages refused), so which of these "
        "Segment refuses is not known: stays pending; reconciliation or `segment-sync replay "
        "outbound` sends it again and narrows further"
    )
