"""The outbound section: Segment region, write key, allow-lists, batching and the state database."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from segment_sync.redaction import SecretUrl
from segment_sync.settings.base import Section
from segment_sync.settings.destinations import (
    DestinationSettings,
    RouteBySettings,
    destination_problems,
)
from segment_sync.settings.values import DatabaseUrl, HttpUrl, env_name, optional_env_name

SEGMENT_ENDPOINTS = {
    "us": "https://api.segment.io",
    "eu": "https://events.eu1.segmentapis.com",
}


class OutboundSettings(Section):
    write_key_env: str = "SEGMENT_WRITE_KEY"
    region: Literal["us", "eu"] = "us"
    base_url: HttpUrl | None = None
    event_sync: list[str] = Field(default_factory=list)
    customer_fields_sync: list[str] = Field(default_factory=list)
    state_url: DatabaseUrl = SecretUrl("sqlite:///outbound_state.db")
    chunk_size: int = Field(default=20_000, ge=100, le=1_000_000)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    max_retries: int = Field(default=6, ge=0, le=50)
    backoff_cap_s: float = Field(default=30.0, gt=0, le=600)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    retry_failed_after_s: float = Field(
        default=300.0, ge=0, le=86_400
    )  # sensor re-runs a failed sync
    # A sensor-launched run keeps sending rows as they commit for this long, then exits.
    follow_s: float = Field(default=180.0, ge=0, le=3600)
    poll_interval_ms: int = Field(default=250, ge=10, le=60_000)
    # Customer shards per stream, each with its own progress and lock (outbound/shards.py).
    shards: int = Field(default=1, ge=1, le=256)
    # A Segment Public API token (Team and Business plans): `settings check --connect` proves
    # the workspace's region with it. Segment's Tracking API cannot: it answers 200 either way.
    public_api_token_env: str | None = None
    # The Public API stand-in in tests: "{region}" stands for us or eu; null in production.
    public_api_base_url: HttpUrl | None = None
    # Several Segment destinations, a customer's chosen by route_by (destinations.py).
    destinations: list[DestinationSettings] = Field(default_factory=list)
    route_by: RouteBySettings | None = None
    # Set by Settings.for_destination: the destination this copy of the settings sends to.
    _serving: str | None = PrivateAttr(default=None)

    _check_env = field_validator("write_key_env")(env_name)

    @model_validator(mode="after")
    def _routable(self) -> OutboundSettings:
        if not self.destinations:
            if self.route_by is not None:
                raise ValueError(
                    "outbound.route_by needs outbound.destinations (the Segment destinations "
                    "to route to); remove route_by for a single destination"
                )
            return self
        problems = destination_problems(self.destinations, self.route_by)
        fields = type(self).model_fields
        own = {
            key
            for key in ("region", "write_key_env", "base_url")
            if key in self.model_fields_set and getattr(self, key) != fields[key].default
        }
        if own and self._serving is None:
            problems.append(
                f"outbound.{', outbound.'.join(sorted(own))}: with outbound.destinations each "
                "destination has its own region, write_key_env and base_url; move them there"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def destination(self) -> str | None:
        """The name of the destination these settings send to; None: the single destination."""
        return self._serving

    _check_token_env = field_validator("public_api_token_env")(optional_env_name)

    @field_validator("public_api_base_url")
    @classmethod
    def _one_url_per_region(cls, url: SecretUrl | None) -> SecretUrl | None:
        if url is not None and url.reveal().count("{region}") != 1:
            raise ValueError(
                "must hold {region} once, where the region (us or eu) goes, e.g. "
                "http://127.0.0.1:8704/{region}; or null for Segment's own hosts"
            )
        return url

    @field_validator("event_sync", "customer_fields_sync")
    @classmethod
    def _no_blank_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ValueError("every entry must be a non-empty name")
        return list(dict.fromkeys(names))

    @property
    def endpoint(self) -> SecretUrl:
        """Base URL requests go to: the override (stand-in) or the region's Segment endpoint."""
        return self.base_url or SecretUrl(SEGMENT_ENDPOINTS[self.region])
