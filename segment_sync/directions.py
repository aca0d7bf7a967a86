"""Which directions and streams are on: a direction needs its secrets, a stream its allow-list.

Pure: reads the settings and the environment (names only), never prints a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from segment_sync.loyalty.records import Stream
from segment_sync.settings import Settings


@dataclass(frozen=True)
class Switch:
    """One direction or stream: on, or off and why (with what to set)."""

    name: str
    off_reason: str | None

    @property
    def on(self) -> bool:
        return self.off_reason is None


def _unset(name: str) -> bool:
    return not os.environ.get(name)


def _unset_reason(env: str, key: str, value: str = "<secret>") -> str:
    return f"environment variable {env} ({key}) is not set; export {env}={value} to turn it on"


def _write_keys(settings: Settings, destination: str | None = None) -> list[tuple[str, str]]:
    """(variable, settings key) of every destination's write key (or only `destination`'s)."""
    destinations = settings.outbound.destinations
    if not destinations:
        return [(settings.outbound.write_key_env, "outbound.write_key_env")]
    return [
        (d.write_key_env, f"outbound.destinations[{d.name}].write_key_env")
        for d in destinations
        if destination is None or d.name == destination
    ]


def outbound_off(settings: Settings, destination: str | None = None) -> str | None:
    """Why outbound (to `destination`, or to every destination) is off: a write key not in the
    environment; None when it is on."""
    for env, key in _write_keys(settings, destination):
        if _unset(env):
            return f"outbound is off: {_unset_reason(env, key)}"
    return None


def stream_off(settings: Settings, stream: Stream, destination: str | None = None) -> str | None:
    """Why an outbound stream (to `destination`, or to every destination) is off: direction
    off, or an empty allow-list; None when it is on."""
    return outbound_off(settings, destination) or allow_list_off(settings, stream)


def allow_list_off(settings: Settings, stream: Stream) -> str | None:
    """Why a stream sends nothing whatever the write key: its allow-list is empty (else None)."""
    if stream is Stream.EVENTS and not settings.outbound.event_sync:
        return (
            "outbound events are off: outbound.event_sync is empty; list the loyalty actions "
            "to send as Track calls"
        )
    if stream is Stream.PROFILES and not settings.outbound.customer_fields_sync:
        return (
            "outbound profiles are off: outbound.customer_fields_sync is empty; list the "
            "profile fields to send as Identify traits"
        )
    return None


def inbound_off(settings: Settings) -> str | None:
    """Why inbound is off (Antavo key or secret not in the environment, or no mapping), or None."""
    inbound = settings.inbound
    for env, key in (
        (inbound.api_key_env, "inbound.api_key_env"),
        (inbound.api_secret_env, "inbound.api_secret_env"),
    ):
        if _unset(env):
            return f"inbound is off: {_unset_reason(env, key)}"
    return mappings_off(settings)


def mappings_off(settings: Settings) -> str | None:
    """Why nothing is sent to Antavo whatever the credentials: no mapping is enabled (else None).

    As in Segment, no data is sent until a mapping is configured; received events stay buffered.
    """
    mappings = settings.inbound.active_mappings()
    if any(m.enabled for m in mappings):
        return None
    which = (
        "every mapping in inbound.mappings is disabled"
        if mappings
        else ("inbound.mappings lists no mapping")
    )
    return (
        f"inbound sends nothing: {which}; received events stay buffered until one is enabled "
        "(data/segment_sync.example.yaml has the manual's two actions, ready to copy)"
    )


def missing_secrets(settings: Settings) -> list[str]:
    """`VAR (settings.key)` for every secret variable that is not set (names only)."""
    names = [
        *_write_keys(settings),
        (settings.inbound.api_key_env, "inbound.api_key_env"),
        (settings.inbound.api_secret_env, "inbound.api_secret_env"),
        (settings.inbound.webhook_secret_env, "inbound.webhook_secret_env"),
    ]
    if settings.alerts.webhook_url_env:
        names.append((settings.alerts.webhook_url_env, "alerts.webhook_url_env"))
    return [f"{env} ({key})" for env, key in names if _unset(env)]


def switches(settings: Settings) -> list[Switch]:
    """Outbound, its two streams, and inbound, in that order."""
    return [
        Switch("outbound", outbound_off(settings)),
        Switch("outbound events", stream_off(settings, Stream.EVENTS)),
        Switch("outbound profiles", stream_off(settings, Stream.PROFILES)),
        Switch("inbound", inbound_off(settings)),
    ]


def alerts_line(settings: Settings) -> str:
    """Whether alerts are on, which kinds, and the variable that holds the webhook URL; OFF
    while that variable is unset here, as for outbound and inbound."""
    alerts = settings.alerts
    if alerts.webhook_url_env is None:
        return f"{'alerts':<18} OFF  alerts.webhook_url_env is not set (no alerts are posted)"
    if _unset(alerts.webhook_url_env):
        reason = _unset_reason(
            alerts.webhook_url_env, "alerts.webhook_url_env", "<incoming webhook URL>"
        )
        return f"{'alerts':<18} OFF  {reason}"
    kinds = ", ".join(alerts.on) or "nothing (alerts.on is empty)"
    return (
        f"{'alerts':<18} on   {kinds} to ${alerts.webhook_url_env}; links to {alerts.ui_base_url}"
    )


def status_lines(settings: Settings) -> list[str]:
    """What `settings check` prints: each direction and stream on/off, then missing secrets."""
    outbound = settings.outbound
    details = {
        "outbound": f"region {outbound.region}, endpoint {outbound.endpoint}",
        "outbound events": f"{len(outbound.event_sync)} action(s) in outbound.event_sync",
        "outbound profiles": (
            f"{len(outbound.customer_fields_sync)} field(s) in outbound.customer_fields_sync"
        ),
        "inbound": f"Antavo {settings.inbound.endpoint}, "
        f"{sum(m.enabled for m in settings.inbound.active_mappings())} mapping(s) enabled",
    }
    lines = [
        f"{s.name:<18} {'on ' if s.on else 'OFF'}  {details[s.name] if s.on else s.off_reason}"
        for s in switches(settings)
    ]
    lines.append(alerts_line(settings))
    missing = missing_secrets(settings)
    if missing:
        lines.append(f"MISSING SECRETS (not set in the environment): {', '.join(missing)}")
    else:
        lines.append("secrets: all set")
    return lines
