"""The inbound section: the Antavo stack and keys, the webhook receiver, the buffer and the mappings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from segment_sync.inbound.mapping.actions import ACTIONS, Mapping
from segment_sync.redaction import SecretUrl
from segment_sync.settings.base import PROBLEM_SEPARATOR, Section
from segment_sync.settings.values import DatabaseUrl, HttpUrl, env_name, optional_env_name

ANTAVO_API_KEY = re.compile(r"[A-Za-z0-9_-]+")  # what Escher accepts as a key id
# The shared rate limiter's URL schemes, and an example URL for the messages.
LIMITER_URLS = {
    "redis": (("redis", "rediss", "unix"), "redis://host:6379/0"),
    "postgres": (("postgresql", "postgres"), "postgresql://user:password@host:5432/db"),
}


class MappingSettings(Section):
    """One Antavo (Actions) mapping: which Segment events (trigger) become which Antavo event."""

    name: str
    action: Literal["loyalty_event", "profile_update"]
    trigger: str | None = None  # None: the action's default trigger
    fields: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    def to_mapping(self) -> Mapping:
        trigger = self.trigger if self.trigger is not None else ACTIONS[self.action].default_trigger
        return Mapping(self.name, self.action, trigger, dict(self.fields), self.enabled)


class InboundSettings(Section):
    stack: str = "test"
    base_url: HttpUrl | None = None
    api_key_env: str = "ANTAVO_API_KEY"
    api_secret_env: str = "ANTAVO_API_SECRET"
    webhook_secret_env: str = "SEGMENT_WEBHOOK_SECRET"
    buffer_url: DatabaseUrl = SecretUrl("sqlite:///inbound.db")
    multi_accounts: bool = False
    rate_limit_per_minute: int = Field(default=1500, ge=1, le=1_000_000)
    # Where the limit lives: this process only (local), or shared by every ingest process.
    rate_limiter: Literal["local", "redis", "postgres"] = "local"
    rate_limiter_url_env: str | None = None  # the redis:// or postgresql:// URL: a secret
    mappings: list[MappingSettings] = Field(default_factory=list)  # none: nothing is sent
    max_attempts: int = Field(default=5, ge=1, le=100)
    chunk_size: int = Field(default=1000, ge=1, le=100_000)
    max_in_flight: int = Field(default=8, ge=1, le=64)
    max_retries: int = Field(default=5, ge=0, le=50)
    lease_s: float = Field(default=30.0, ge=1, le=3600)  # claim lease, renewed every lease_s/3
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    # The receiver's edge: a bearer token authenticates batches; reads have time limits.
    webhook_token_env: str | None = None
    allow_unverified_batches: bool = False
    read_timeout_s: float = Field(default=10, gt=0, le=600)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    max_unverified_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=8 * 1024**3)

    _check_env = field_validator("api_key_env", "api_secret_env", "webhook_secret_env")(env_name)
    _check_token_env = field_validator("webhook_token_env", "rate_limiter_url_env")(
        optional_env_name
    )

    @field_validator("stack")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        # The manual's own example is "Staging": Segment's Stack field takes it as written.
        normalised = value.strip().lower()
        if not re.match(r"^[a-z0-9-]+$", normalised):
            raise ValueError(
                "must be the Antavo stack name shown next to 'Your API Region', e.g. st2 or "
                "Staging (letters, digits and '-')"
            )
        return normalised

    @model_validator(mode="after")
    def _valid_mappings(self) -> InboundSettings:
        problems = [p for m in self.active_mappings() for p in m.validate(self.multi_accounts)]
        names = [m.name for m in self.mappings]
        problems += [
            f"mapping name {n!r} is used twice; names must be unique"
            for n in sorted({n for n in names if names.count(n) > 1})
        ]
        if problems:
            raise ValueError(PROBLEM_SEPARATOR.join(problems))
        return self

    @model_validator(mode="after")
    def _limiter_has_url(self) -> InboundSettings:
        if self.rate_limiter != "local" and self.rate_limiter_url_env is None:
            example = LIMITER_URLS[self.rate_limiter][1]
            raise ValueError(
                f"rate_limiter is {self.rate_limiter}, so rate_limiter_url_env must name the "
                f"environment variable holding its URL (e.g. rate_limiter_url_env: "
                f"ANTAVO_RATE_LIMIT_URL, with ANTAVO_RATE_LIMIT_URL={example}); or set "
                "rate_limiter: local"
            )
        return self

    @field_validator("mappings", mode="before")
    @classmethod
    def _no_mappings(cls, value: Any) -> Any:
        return [] if value is None else value  # `mappings:` left empty in YAML

    def active_mappings(self) -> list[Mapping]:
        """The configured mappings (enabled or not); no mapping is active unless listed here."""
        return [m.to_mapping() for m in self.mappings]

    @property
    def endpoint(self) -> SecretUrl:
        return self.base_url or SecretUrl(f"https://api.{self.stack}.antavo.com")
