"""Logs written by real runs: `segment-sync run outbound` against the Segment stand-in and
`segment-sync run inbound` against the Antavo stand-in. Import the fixture into a test module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

ORDER_MAPPING = {
    "name": "Order completed",
    "action": "loyalty_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {"action": {"@literal": "checkout"}, "data": {"total": {"@path": "$.properties.total"}}},
}  # fmt: skip
PROFILE_MAPPING = {"name": "Profile updates", "action": "profile_update"}
TRACKED_CUSTOMERS = [f"c-{n}" for n in range(12)]
PROFILE_CUSTOMERS = ["c-0", "c-1", "c-2"]
WEBHOOK_EVENTS = [
    {"type": "identify", "messageId": "wh-1", "userId": "c-1", "traits": {"email": "a@example.com"}},
    {"type": "track", "messageId": "wh-2", "userId": "c-999", "event": "Order Completed",
     "properties": {"total": 59.5}},
    {"type": "page", "messageId": "wh-3", "userId": "c-1", "name": "Home"},
]  # fmt: skip


@dataclass(frozen=True)
class RealRunLogs:
    """The settings file of the runs and the logs directory they wrote."""

    settings: Path
    logs_dir: Path


@pytest.fixture
def real_run_logs(write_settings, segment_standin, antavo_standin, tmp_path) -> RealRunLogs:
    """One outbound run (12 track events in one batch, whose first attempt Segment answers 503,
    then 3 identify calls) and one inbound run (an identify delivered, an order for a customer
    Antavo does not know, a page no mapping matches)."""
    from segment_sync.cli import main
    from segment_sync.inbound.buffer import InboundBuffer
    from segment_sync.loyalty.records import NewEvent, NewProfileChange
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.settings import load_settings

    path = write_settings(
        outbound={"base_url": segment_standin.url},
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "mappings": [ORDER_MAPPING, PROFILE_MAPPING]},
    )  # fmt: skip
    settings = load_settings(path)
    store = LoyaltyStore(settings.loyalty_store.url)
    store.append_events([NewEvent(c, "point_add", {"points": 5}) for c in TRACKED_CUSTOMERS])
    store.append_profile_changes(
        [NewProfileChange(c, {"email": f"{c}@example.com"}) for c in PROFILE_CUSTOMERS]
    )
    segment_standin.set_faults(outage_requests=1)
    outbound = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])
    assert outbound.exit_code == 0, outbound.output

    antavo_standin.configure(known_customers=["c-1"])
    InboundBuffer(settings.inbound.buffer_url).add_many(WEBHOOK_EVENTS)
    inbound = CliRunner().invoke(main, ["run", "inbound", "--settings", str(path)])
    assert inbound.exit_code == 1 and "failed 1" in inbound.output, inbound.output
    return RealRunLogs(path, Path(settings.logs.dir))
