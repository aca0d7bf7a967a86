"""Several Segment destinations (one per region) and how a customer is routed to one.

`outbound.destinations` lists them, each a name, a region and its write key's variable;
`outbound.route_by` names the customer attribute that picks one. Without them the outbound
section's own `region` and `write_key_env` are the one destination, as before.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from segment_sync.settings.base import Section
from segment_sync.settings.values import HttpUrl, env_name, optional_env_name

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class DestinationSettings(Section):
    """One Segment source: its name in logs and Dagster, its region and write key variable."""

    name: str
    region: Literal["us", "eu"]
    write_key_env: str
    base_url: HttpUrl | None = None  # a stand-in in tests; null: the region's Segment endpoint
    # This destination's workspace's Public API token (settings check --connect); null: the
    # outbound section's public_api_token_env.
    public_api_token_env: str | None = None

    _check_env = field_validator("write_key_env")(env_name)
    _check_token_env = field_validator("public_api_token_env")(optional_env_name)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                "must be lower case letters, digits, '-' or '_', starting with a letter "
                "(at most 32), e.g. eu; it names the destination in logs and Dagster"
            )
        return name


class RouteBySettings(Section):
    """Which customer attribute picks a customer's destination, and how."""

    attribute: str = Field(min_length=1)
    # attribute value (as text) -> destination name
    map: dict[str, str] = Field(default_factory=dict)
    # The destination of a customer whose value is unknown or unmapped; null: such a customer's
    # messages fail, naming the customer and this setting.
    default: str | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _text_keys(cls, value: object) -> object:
        # YAML reads `1:` or `true:` as non-text keys; the store's values are compared as text.
        if isinstance(value, dict):
            return {as_text(k): v for k, v in value.items()}
        return value


def as_text(value: object) -> str:
    """An attribute value as the route map compares it (YAML reads `true:` as a boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def destination_problems(
    destinations: list[DestinationSettings], route_by: RouteBySettings | None
) -> list[str]:
    """What is wrong with a list of destinations and its routing, one sentence each."""
    problems: list[str] = []
    names = [d.name for d in destinations]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        problems.append(f"outbound.destinations: names must differ ({', '.join(doubled)} twice)")
    targets = [(d.region, d.base_url, d.write_key_env) for d in destinations]
    if len(set(targets)) < len(targets):
        problems.append(
            "outbound.destinations: two destinations have the same region, base_url and "
            "write_key_env, so they would be one Segment source; give each its own write key"
        )
    if route_by is None:
        problems.append(
            "outbound.route_by is required with outbound.destinations: e.g. "
            "route_by: {attribute: country, map: {DE: eu, US: us}}"
        )
        return problems
    known = set(names)
    unknown = sorted({v for v in route_by.map.values() if v not in known})
    if route_by.default is not None and route_by.default not in known:
        unknown.append(route_by.default)
    if unknown:
        problems.append(
            f"outbound.route_by: {', '.join(unknown)} is not one of outbound.destinations "
            f"({', '.join(names)}); use one of those names"
        )
    return problems
