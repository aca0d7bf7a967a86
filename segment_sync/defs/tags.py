"""Run tags the code location sets and reads."""

from __future__ import annotations

from collections.abc import Mapping

TRIGGER_TAG = "segment_sync/trigger"
STREAM_TAG = "segment_sync/stream"


def run_trigger(tags: Mapping[str, str]) -> str:
    """sensor | schedule | manual, from a run's tags."""
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/schedule_name" in tags:
        return "schedule"
    return "manual"
