"""The whole settings file: its sections, the rules across them, and the secrets they name."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pydantic import BaseModel, Field, model_validator

from segment_sync.redaction import SecretUrl
from segment_sync.settings.base import Section, SettingsError, read_secret
from segment_sync.settings.inbound import ANTAVO_API_KEY, LIMITER_URLS, InboundSettings
from segment_sync.settings.operations import AlertSettings, ExecutorSettings, MaintenanceSettings
from segment_sync.settings.outbound import OutboundSettings
from segment_sync.settings.stores import GeneralSettings, LogsSettings, LoyaltyStoreSettings
from segment_sync.settings.values import url_problem


class Settings(Section):
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    loyalty_store: LoyaltyStoreSettings = Field(default_factory=LoyaltyStoreSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    @model_validator(mode="after")
    def _reconcile_within_retention(self) -> Settings:
        hours = self.maintenance.reconcile_lookback_hours
        if hours >= self.logs.retention_days * 24:
            raise ValueError(
                f"maintenance.reconcile_lookback_hours ({hours:g}) must be shorter than "
                f"logs.retention_days ({self.logs.retention_days} days = "
                f"{self.logs.retention_days * 24} h): older delivery rows are deleted, so "
                "reconciliation would resend events; lower the one or raise the other"
            )
        return self

    def write_key(self) -> str:
        """The Segment write key from the environment; a clear error names the variable if unset."""
        name = self.outbound.destination
        key = "outbound.write_key_env" if name is None else f"outbound.destinations[{name}]"
        return read_secret(self.outbound.write_key_env, key)

    def destination_names(self) -> list[str | None]:
        """Every destination's name in the order configured; [None]: the single destination."""
        return [d.name for d in self.outbound.destinations] or [None]

    def for_destination(self, name: str | None) -> Settings:
        """These settings as seen by one destination: its region, write key and base URL in
        the outbound section's own keys, so everything built from them sends there."""
        if name is None:
            return self
        chosen = [d for d in self.outbound.destinations if d.name == name]
        if not chosen:
            known = ", ".join(d.name for d in self.outbound.destinations) or "none"
            raise SettingsError(
                [f"no destination {name!r} in outbound.destinations (configured: {known})"]
            )
        d = chosen[0]
        token_env = d.public_api_token_env or self.outbound.public_api_token_env
        outbound = self.outbound.model_copy(
            update={
                "region": d.region,
                "write_key_env": d.write_key_env,
                "base_url": d.base_url,
                "public_api_token_env": token_env,
            }
        )
        outbound._serving = name
        return self.model_copy(update={"outbound": outbound})

    def antavo_credentials(self) -> tuple[str, str]:
        """(API key, API secret) from the environment; a key Escher cannot use is a clear error."""
        key = read_secret(self.inbound.api_key_env, "inbound.api_key_env")
        if not ANTAVO_API_KEY.fullmatch(key):
            name = self.inbound.api_key_env
            raise SettingsError(
                [
                    f"inbound.api_key_env: the value of {name} is not an Antavo API key (letters, "
                    f"digits, '-' and '_' only; check for spaces or quotes); export {name} again "
                    "with the key from Antavo's API settings"
                ]
            )
        return key, read_secret(self.inbound.api_secret_env, "inbound.api_secret_env")

    def rate_limiter_url(self) -> str | None:
        """The shared rate limiter's URL from the environment; None for the local limiter.

        An unset variable or a URL of the wrong kind is a clear error; the URL is never shown.
        """
        inbound = self.inbound
        if inbound.rate_limiter == "local":
            return None
        name = inbound.rate_limiter_url_env
        schemes, example = LIMITER_URLS[inbound.rate_limiter]
        key = "inbound.rate_limiter_url_env"
        value = os.environ.get(name or "", "").strip()
        if not value:
            raise SettingsError(
                [
                    f"{key}: environment variable {name} is not set; export {name}={example} "
                    f"(the {inbound.rate_limiter} server every ingest process shares), or set "
                    "inbound.rate_limiter: local"
                ]
            )
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in schemes:
            allowed = " or ".join(f"{s}://" for s in schemes)
            raise SettingsError(
                [
                    f"{key}: the value of {name} is not a {inbound.rate_limiter} URL (it must "
                    f"start with {allowed}); export {name} again, e.g. {name}={example}"
                ]
            )
        problem = limiter_url_problem(inbound.rate_limiter, value)
        if problem is not None:
            raise SettingsError(
                [
                    f"{key}: the value of {name} cannot be read as a {inbound.rate_limiter} URL: "
                    f"{problem} (the URL is not shown); export {name} again, e.g. "
                    f"{name}={example}"
                ]
            )
        return value

    def secret_env_names(self) -> list[str]:
        """Every environment variable named here that holds a secret (for redaction)."""
        names = [
            self.outbound.write_key_env,
            *(d.write_key_env for d in self.outbound.destinations),
            *(d.public_api_token_env for d in self.outbound.destinations),
            self.outbound.public_api_token_env,
            self.inbound.api_key_env,
            self.inbound.api_secret_env,
            self.inbound.webhook_secret_env,
            self.inbound.webhook_token_env,
            self.inbound.rate_limiter_url_env,
            self.alerts.webhook_url_env,
            *self.celery_url_envs(),
        ]
        return [name for name in names if name]

    def url_settings(self) -> dict[str, SecretUrl]:
        """Every URL setting by key (`outbound.base_url`, ...), found by type: a new one counts."""
        return dict(_urls_in(self, ""))

    def secrets(self) -> list[str]:
        """Every secret value known here, for redaction: the named variables' values and the
        passwords of the URL settings and of the URLs in those variables (the rate limiter's,
        Celery's, the alerts webhook's). Whole passwords only: the log writers mask these in
        every row, and a piece (`2026` of `Winter@2026`) would mask data; a parser's error
        about a URL is masked with its pieces where it is caught (`passwords_and_pieces`)."""
        values = [v for name in self.secret_env_names() if (v := os.environ.get(name))]
        urls = [*self.url_settings().values(), *(SecretUrl(v) for v in values if "://" in v)]
        return values + [p for url in urls for p in url.passwords()]

    def celery_url_envs(self) -> list[str]:
        """The broker and result-backend variables, when runs execute on Celery."""
        e = self.executor
        return [e.celery_broker_url_env, e.celery_backend_url_env] if e.kind == "celery" else []

    def alert_webhook_url(self) -> str | None:
        """The alerts webhook URL from the environment, or None when the variable is unset."""
        name = self.alerts.webhook_url_env
        return (os.environ.get(name) or None) if name else None

    def webhook_secret(self) -> str | None:
        """The shared secret Segment signs webhooks with, or None when the variable is unset."""
        return os.environ.get(self.inbound.webhook_secret_env) or None


def limiter_url_problem(kind: str, url: str) -> str | None:
    """Why the shared rate limiter's client could not read `url`, in words that quote none of
    it; None when it can. Its own parser is asked last: its errors quote what it took for the
    port, which may be the password's start (`redis://u:pw/rest@host`)."""
    if kind == "redis":
        problem = url_problem(url)
        if problem is not None:
            return problem
        from redis.connection import parse_url  # only a redis limiter loads redis-py

        try:
            parse_url(url)
        except (ValueError, TypeError):
            return _UNREADABLE
        return None
    # PostgreSQL: read as the engine reads it, the port checked, as for every database URL.
    from segment_sync.db_urls import server_url_problem

    return server_url_problem(url)


_UNREADABLE = (
    "its host, port, database number or options cannot be read; percent-encode '/', '?', '#' "
    "and '@' in its password (%2F, %3F, %23, %40)"
)


def _urls_in(model: BaseModel, prefix: str) -> Iterator[tuple[str, SecretUrl]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretUrl):
            yield f"{prefix}{name}", value
        elif isinstance(value, BaseModel):
            yield from _urls_in(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _urls_in(item, f"{prefix}{name}[{i}].")
