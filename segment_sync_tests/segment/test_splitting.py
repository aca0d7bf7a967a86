"""The split plan narrows a refused batch to the messages Segment refuses, within a budget.

Segment is simulated here as refusing any request that carries one of the `bad` messages; the
plan is pure, so every case runs without HTTP (the sync's use of it: outbound/test_refused_messages).
"""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from segment_sync.segment.splitting import Part, SplitPlan


def narrow(bounds: list[tuple[int, int]], bad: set[int], budget: int | None = None):
    """(accepted parts, parts refused for good, requests made, the plan), round by round."""
    plan = SplitPlan(bounds) if budget is None else SplitPlan(bounds, budget)
    marks = sorted(bad)

    def refused(part: Part) -> bool:
        at = bisect.bisect_left(marks, part.start)
        return at < len(marks) and marks[at] < part.stop

    accepted: list[Part] = []
    final: list[Part] = []
    requests = 0
    round_ = plan.first
    while round_:
        requests += len(round_)
        accepted += [p for p in round_ if not refused(p)]
        round_, done = plan.after_refusal([p for p in round_ if refused(p)])
        final += done
    return accepted, final, requests, plan


def messages_of(parts: list[Part]) -> list[int]:
    return sorted(i for p in parts for i in range(p.start, p.stop))


def test_one_refused_message_in_2500_is_found_with_at_most_24_more_requests():
    accepted, final, requests, plan = narrow([(0, 2500)], {1234})
    assert final == [Part(0, 1234, 1235)]
    assert messages_of(accepted) == [i for i in range(2500) if i != 1234]
    assert requests - 1 == plan.spent(0) <= 24


def test_every_message_of_a_batch_refused_costs_at_most_100_more_requests():
    accepted, final, requests, plan = narrow([(0, 2500)], set(range(2500)))
    assert accepted == [] and messages_of(final) == list(range(2500))
    assert requests - 1 == plan.spent(0) == 100


def test_a_batch_of_51_messages_all_refused_is_still_narrowed_to_single_messages():
    _, final, _, _ = narrow([(0, 51)], set(range(51)))
    assert all(len(p) == 1 for p in final) and len(final) == 51


def test_an_accepted_request_is_never_split():
    accepted, final, requests, _ = narrow([(0, 1000), (1000, 2500)], {1500})
    assert Part(0, 0, 1000) in accepted and final == [Part(1, 1500, 1501)]
    assert requests <= 2 + 2 * 11  # the 1,500 messages of the second need 11 halvings


def test_each_request_has_its_own_budget():
    # Every message of the first batch refused uses its budget; the second still finds its one.
    _, final, _, plan = narrow([(0, 2500), (2500, 5000)], {*range(2500), 4000}, budget=30)
    assert plan.spent(0) == 30 and Part(1, 4000, 4001) in final
    assert messages_of([p for p in final if p.origin == 0]) == list(range(2500))


@given(
    sizes=st.lists(st.integers(1, 2500), min_size=1, max_size=4),
    bad=st.sets(st.integers(0, 9999), max_size=12),
    budget=st.integers(0, 120),
)
def test_every_message_settles_once_and_only_refused_ones_fail_within_budget(sizes, bad, budget):
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    bounds = [(s, s + n) for s, n in zip(starts, sizes, strict=True)]
    total = starts[-1] + sizes[-1]
    bad = {i for i in bad if i < total}
    accepted, final, _, plan = narrow(bounds, bad, budget)
    assert messages_of(accepted + final) == list(range(total))  # once each, none lost
    assert not bad.intersection(messages_of(accepted))  # nothing refused counts as accepted
    for origin, (start, stop) in enumerate(bounds):
        assert plan.spent(origin) <= budget
        mine = [p for p in final if p.origin == origin]
        if all(len(p) == 1 for p in mine):  # fully narrowed: exactly the refused ones fail
            assert messages_of(mine) == sorted(i for i in bad if start <= i < stop)
        else:  # only a spent budget leaves good messages among the refused
            assert plan.spent(origin) + 2 > budget
