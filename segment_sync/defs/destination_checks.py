"""The outbound log checks with several destinations (`outbound.destinations`): each destination
judged on its own assets, so a data engineer sees EU and US apart and a failing destination's
alert names it.

Per destination: `outbound_error_rate_<name>` on its Track calls asset (its track messages) and
on its Identify calls asset (its identify messages), and `oldest_undelivered_event_<name>` on its
Track calls asset (the events routed to it, against its own progress). The inbound and
loyalty-source checks are not about a destination and stay one each.

No `from __future__ import annotations` here: Dagster inspects the checks' resource parameters.
"""

import dagster as dg

from segment_sync.defs.checks import (
    ERROR_RATE_DESCRIPTION,
    LOG_CHECKS,
    UNDELIVERED_DESCRIPTION,
    error_rate_result,
    inbound_failed_items,
    loyalty_source_alive,
    undelivered_result,
)
from segment_sync.defs.destinations import asset_key
from segment_sync.defs.resources import SettingsResource
from segment_sync.loyalty.records import Stream
from segment_sync.settings import Settings


def check_suffix(destination: str) -> str:
    """A destination's name as a check name allows it (`eu-west` -> `eu_west`)."""
    return destination.replace("-", "_")


def _error_rate(destination: str, stream: Stream) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(destination, stream),
        name=f"outbound_error_rate_{check_suffix(destination)}",
        description=f"Destination {destination}, its {stream.value} only. "
        + ERROR_RATE_DESCRIPTION,
    )
    def check(settings: SettingsResource) -> dg.AssetCheckResult:
        return error_rate_result(settings.load(), destination, stream)

    return check


def _undelivered(destination: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(destination, Stream.EVENTS),
        name=f"oldest_undelivered_event_{check_suffix(destination)}",
        description=f"Destination {destination}, the events routed to it, against its own "
        "progress. " + UNDELIVERED_DESCRIPTION,
    )
    def check(settings: SettingsResource) -> dg.AssetCheckResult:
        return undelivered_result(settings.load(), destination)

    return check


def build_log_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    """The log checks of these settings: LOG_CHECKS for one destination, else the outbound ones
    per destination (and stream, for the error rate) beside the inbound and source checks."""
    if not settings.outbound.destinations:
        return LOG_CHECKS
    routed = []
    for d in settings.outbound.destinations:
        routed += [_error_rate(d.name, s) for s in Stream]
        routed.append(_undelivered(d.name))
    return [*routed, inbound_failed_items, loyalty_source_alive]
