"""Routing per region: the same events sent to one destination, and to two (EU and US, routed by
the customers' country), side by side in one run.

    .venv/bin/python bench/routing.py [--events 60000] [--customers 3000] [--rounds 2]

Each round seeds nothing new: it resets progress and the stand-ins, then times
`run_manual_outbound` (events stream) over a fresh log directory with (a) one destination and
(b) two destinations, in alternating order. Both send every event once; (b) reads the stream
once per destination and routes each row by its customer's country as of the row. Prints the
median times, the ratio and the load average; exits 1 when (b) takes more than RATIO_TARGET x (a).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATIO_TARGET = 1.6
KEYS = {"bench-us-write-key-0000": "us", "bench-eu-write-key-0000": "eu"}  # made up, not secrets


def main() -> int:
    from segment_sync.cli.outbound_runs import run_manual_outbound
    from segment_sync.loyalty.records import NewEvent, NewProfileChange
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.settings import parse_settings
    from segment_sync.standins.segment import SegmentStandin
    from segment_sync.standins.server import serve_in_thread

    args = argparse.ArgumentParser()
    args.add_argument("--events", type=int, default=60_000)
    args.add_argument("--customers", type=int, default=3_000)
    args.add_argument("--rounds", type=int, default=2)
    opts = args.parse_args()
    os.environ["BENCH_KEY_US"], os.environ["BENCH_KEY_EU"] = list(KEYS)
    work = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    eu, us = (
        SegmentStandin("eu", KEYS, keep_messages=False),
        SegmentStandin("us", KEYS, keep_messages=False),
    )
    try:
        store_url = f"sqlite:///{work}/loyalty.db"
        store = LoyaltyStore(store_url)
        countries = ["DE", "US"]
        store.append_profile_changes(
            [
                NewProfileChange(f"c-{i}", {"country": countries[i % 2]})
                for i in range(opts.customers)
            ]
        )
        for start in range(0, opts.events, 20_000):
            store.append_events(
                [NewEvent(f"c-{i % opts.customers}", "point_add", {"n": i})
                 for i in range(start, min(start + 20_000, opts.events))]
            )  # fmt: skip
        with serve_in_thread(eu.app) as eu_url, serve_in_thread(us.app) as us_url:
            common = {"loyalty_store": {"url": store_url}}
            base = {"event_sync": ["point_add"]}
            single = {**base, "write_key_env": "BENCH_KEY_US", "base_url": us_url}
            routed = {
                **base,
                "destinations": [
                    {"name": "eu", "region": "eu", "write_key_env": "BENCH_KEY_EU", "base_url": eu_url},
                    {"name": "us", "region": "us", "write_key_env": "BENCH_KEY_US", "base_url": us_url},
                ],
                "route_by": {"attribute": "country", "map": {"DE": "eu", "US": "us"}},
            }  # fmt: skip
            times: dict[str, list[float]] = {"one destination": [], "two destinations": []}
            for r in range(opts.rounds):
                cases = list(zip(times, (single, routed), strict=True))
                for name, outbound in cases if r % 2 == 0 else cases[::-1]:
                    run_dir = work / f"{r}-{name.replace(' ', '-')}"
                    settings = parse_settings(
                        {**common, "outbound": {**outbound, "state_url": f"sqlite:///{run_dir}.db"},
                         "logs": {"dir": str(run_dir)}}
                    )  # fmt: skip
                    eu.reset()
                    us.reset()
                    started = time.perf_counter()
                    ok = run_manual_outbound(settings, "events", f"bench-{r}", echo=lambda _: None)
                    times[name].append(time.perf_counter() - started)
                    got = len(eu.accepted_message_ids()) + len(us.accepted_message_ids())
                    if not ok or got != opts.events:
                        print(f"{name}: run failed or delivered {got} of {opts.events}")
                        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, two = (statistics.median(t) for t in times.values())
    ratio = two / one
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{opts.events} events, {opts.customers} customers, {opts.rounds} round(s), load {load}")
    for name, t in times.items():
        print(
            f"  {name:<17} median {statistics.median(t):6.2f}s  ({', '.join(f'{x:.2f}' for x in t)})"
        )
    verdict = "OK" if ratio <= RATIO_TARGET else "MISS"
    print(f"  two / one = {ratio:.2f} (target <= {RATIO_TARGET}): {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
