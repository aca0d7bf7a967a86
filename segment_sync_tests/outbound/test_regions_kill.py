"""A real `segment-sync run outbound` with two destinations, SIGKILLed mid-run, then run again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.outbound.regions import routed_settings, two_regions

CUSTOMERS = {f"c-{i:02d}": ("DE" if i % 2 else "US") for i in range(40)}


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segment_sync.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _first_arrivals(messages: list[dict]) -> dict[str, list[int]]:
    """Each customer's event row ids in the order they first reached the stand-in."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for m in messages:
        if m["type"] == "track" and m["messageId"] not in seen:
            seen.add(m["messageId"])
            order.setdefault(m["userId"], []).append(int(m["messageId"].split("-")[2]))
    return order


@pytest.mark.slow
def test_a_run_to_two_destinations_killed_mid_send_loses_nothing_and_keeps_each_customers_order(
    write_settings, monkeypatch
):
    with two_regions(monkeypatch) as regions:
        path = routed_settings(write_settings, regions)
        settings = load_settings(path)
        import yaml

        raw = yaml.safe_load(path.read_text())
        raw["outbound"].update(chunk_size=100, max_in_flight=1)
        path.write_text(yaml.safe_dump(raw))
        store = LoyaltyStore(settings.loyalty_store.url)
        store.append_profile_changes(
            [NewProfileChange(c, {"country": v, "email": f"{c}@x"}) for c, v in CUSTOMERS.items()]
        )
        event_ids = store.append_events(
            [NewEvent(f"c-{i % 40:02d}", "point_add", {"n": i}) for i in range(3000)]
        )
        for standin in (regions.eu, regions.us):
            standin.set_faults(delay_s=0.03)

        victim = _cli("run", "outbound")
        deadline = time.monotonic() + 120
        while len(regions.eu.accepted_message_ids()) < 300:
            assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read()
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        assert victim.returncode == -signal.SIGKILL
        killed_at = len(regions.eu.accepted_message_ids())
        assert killed_at < 1500 + 20  # it was killed before the EU's events were all sent

        for standin in (regions.eu, regions.us):
            standin.set_faults(delay_s=0.0)
        again = _cli("run", "outbound")
        output, _ = again.communicate(timeout=300)
        assert again.returncode == 0, output

    for standin, country in ((regions.eu, "DE"), (regions.us, "US")):
        mine = {c for c, v in CUSTOMERS.items() if v == country}
        order = _first_arrivals(standin.messages)
        assert set(order) == mine  # nobody else's messages reached this region
        mine_ids = [
            i for i, n in zip(event_ids, range(3000), strict=True) if f"c-{n % 40:02d}" in mine
        ]
        assert sorted(i for ids in order.values() for i in ids) == mine_ids  # each event, once
        assert all(ids == sorted(ids) for ids in order.values())  # each customer in order
        identifies = [m for m in standin.messages if m["type"] == "identify"]
        assert {m["userId"] for m in identifies} == mine
        assert standin.dropped()["messages"] == 0
