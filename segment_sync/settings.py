"""The settings file: one YAML document, validated on load, secrets only named (env vars)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from segment_sync.db import SQLITE_FIX, resolve_sqlite_url, sqlite_file_problem
from segment_sync.destination_settings import (
    DestinationSettings,
    RouteBySettings,
    destination_problems,
)
from segment_sync.inbound.mapping.actions import ACTIONS, Mapping
from segment_sync.redaction import SecretUrl
from segment_sync.setting_values import (
    DatabaseUrl,
    HttpUrl,
    env_name,
    optional_env_name,
    shown_value,
    yaml_problem,
)
from segment_sync.settings_location import DEFAULT_SETTINGS_PATH, SETTINGS_ENV_VAR

SEGMENT_ENDPOINTS = {
    "us": "https://api.segment.io",
    "eu": "https://events.eu1.segmentapis.com",
}

_PROBLEM_SEPARATOR = "\x1e"  # several problems from one validator, split again in _describe
ANTAVO_API_KEY = re.compile(r"[A-Za-z0-9_-]+")  # what Escher accepts as a key id
# The shared rate limiter's URL schemes, and an example URL for the messages.
_LIMITER_URLS = {
    "redis": (("redis", "rediss", "unix"), "redis://host:6379/0"),
    "postgres": (("postgresql", "postgres"), "postgresql://user:password@host:5432/db"),
}


class SettingsError(ValueError):
    """The settings file is wrong; the message names every bad key and how to fix it."""

    def __init__(self, problems: list[str], source: str = "settings") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneralSettings(_Section):
    customer_id_mapping: Literal["customer_id", "external_customer_id"] = "customer_id"


class LoyaltyStoreSettings(_Section):
    url: DatabaseUrl = SecretUrl("sqlite:///loyalty.db")


class OutboundSettings(_Section):
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
    # Several Segment destinations, a customer's chosen by route_by (destination_settings.py).
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


class MappingSettings(_Section):
    """One Antavo (Actions) mapping: which Segment events (trigger) become which Antavo event."""

    name: str
    action: Literal["loyalty_event", "profile_update"]
    trigger: str | None = None  # None: the action's default trigger
    fields: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    def to_mapping(self) -> Mapping:
        trigger = self.trigger if self.trigger is not None else ACTIONS[self.action].default_trigger
        return Mapping(self.name, self.action, trigger, dict(self.fields), self.enabled)


class InboundSettings(_Section):
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
            raise ValueError(_PROBLEM_SEPARATOR.join(problems))
        return self

    @model_validator(mode="after")
    def _limiter_has_url(self) -> InboundSettings:
        if self.rate_limiter != "local" and self.rate_limiter_url_env is None:
            example = _LIMITER_URLS[self.rate_limiter][1]
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


class LogsSettings(_Section):
    # A folder (local or NFS), or s3://bucket/prefix[?endpoint=...&region=...] (credentials from
    # the AWS environment variables; see docs/deploying/object-storage.md).
    dir: str = "logs"
    retention_days: int = Field(default=90, ge=1, le=36_500)

    @field_validator("dir")
    @classmethod
    def _object_store_url(cls, value: str) -> str:
        if value.startswith("s3://"):
            from segment_sync.logs.object_store import endpoint_problem  # no pyarrow import

            parts = urlsplit(value)
            options = parse_qs(parts.query, keep_blank_values=True)
            if parts.username or parts.password or set(options) - {"endpoint", "region"}:
                raise ValueError(
                    "an s3:// logs.dir takes only ?endpoint= and ?region=; credentials come "
                    "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                )
            if not parts.netloc:
                raise ValueError("no bucket: write s3://bucket/prefix")
            endpoint = (options.get("endpoint") or [""])[0]
            problem = endpoint and endpoint_problem(endpoint, "its ?endpoint=")
            if problem:
                raise ValueError(problem)
        return value


class CheckSettings(_Section):
    """Thresholds of the asset checks the Dagster UI shows on the log tables."""

    # Undelivered (failed or pending) / attempted outbound messages, over the window.
    outbound_error_rate_max: float = Field(default=0.05, ge=0, le=1)
    outbound_error_rate_window_hours: float = Field(default=1.0, gt=0, le=24 * 31)
    # Inbound buffer items that failed for good in the last hour.
    inbound_failed_items_max: int = Field(default=0, ge=0, le=1_000_000)
    # Age of the oldest loyalty event the sync passed (behind the watermark) but never delivered.
    undelivered_event_age_max_minutes: float = Field(default=120.0, gt=0, le=60 * 24 * 366)
    # The loyalty source is alive (loyalty/liveness.py): the last hour's new loyalty events are
    # at least this share of the median of the same hour over source_alive_days days (0: off),
    # judged only when that median reaches source_alive_min_baseline rows.
    source_alive_min_share: float = Field(default=0.1, ge=0, le=1)
    source_alive_min_baseline: int = Field(default=20, ge=1, le=10_000_000)
    source_alive_days: int = Field(default=7, ge=1, le=90)


class MaintenanceSettings(_Section):
    """Log compaction and the outbound reconciliation (retention is `logs.retention_days`)."""

    compact_min_files: int = Field(default=2, ge=2, le=100_000)
    reconcile_lookback_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    checks: CheckSettings = Field(default_factory=CheckSettings)

    @model_validator(mode="after")
    def _check_sees_what_reconcile_sees(self) -> MaintenanceSettings:
        minutes = self.checks.undelivered_event_age_max_minutes
        if minutes >= self.reconcile_lookback_hours * 60:
            raise ValueError(
                f"checks.undelivered_event_age_max_minutes ({minutes:g}) must be shorter than "
                f"reconcile_lookback_hours ({self.reconcile_lookback_hours:g} h = "
                f"{self.reconcile_lookback_hours * 60:g} min): the check looks at the events of "
                "the reconciliation window; lower the one or raise the other"
            )
        return self


ALERT_KINDS = ("run_failure", "check_failure")


class AlertSettings(_Section):
    """Alerts posted to a Slack-compatible incoming webhook; off until `webhook_url_env` is set."""

    webhook_url_env: str | None = None  # the webhook URL embeds a token: it is a secret
    on: list[Literal["run_failure", "check_failure"]] = Field(
        default_factory=lambda: list(ALERT_KINDS)
    )
    ui_base_url: HttpUrl = SecretUrl("http://localhost:3000")  # links: {ui_base_url}/runs/{id}
    # Bounded so a tick (several alerts, one of them failing) stays well inside Dagster's 60 s.
    max_retries: int = Field(default=2, ge=0, le=5)
    timeout_s: float = Field(default=5.0, gt=0, le=10)

    _check_env = field_validator("webhook_url_env")(optional_env_name)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean true.
        if isinstance(data, dict) and True in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on")
    @classmethod
    def _unique(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))

    def enabled(self, kind: str) -> bool:
        """True when alerts are on (a variable is named) and `kind` is one of `on`."""
        return self.webhook_url_env is not None and kind in self.on


class ExecutorSettings(_Section):
    """Where runs execute their steps: in the run's own processes, or on Celery workers."""

    kind: Literal["multiprocess", "celery"] = "multiprocess"
    # URLs may carry passwords: only the variables' names are written here.
    celery_broker_url_env: str = "DAGSTER_CELERY_BROKER_URL"
    celery_backend_url_env: str = "DAGSTER_CELERY_BACKEND_URL"

    _check_env = field_validator("celery_broker_url_env", "celery_backend_url_env")(env_name)


class Settings(_Section):
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
        return _read_secret(self.outbound.write_key_env, key)

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
        key = _read_secret(self.inbound.api_key_env, "inbound.api_key_env")
        if not ANTAVO_API_KEY.fullmatch(key):
            name = self.inbound.api_key_env
            raise SettingsError(
                [
                    f"inbound.api_key_env: the value of {name} is not an Antavo API key (letters, "
                    f"digits, '-' and '_' only; check for spaces or quotes); export {name} again "
                    "with the key from Antavo's API settings"
                ]
            )
        return key, _read_secret(self.inbound.api_secret_env, "inbound.api_secret_env")

    def rate_limiter_url(self) -> str | None:
        """The shared rate limiter's URL from the environment; None for the local limiter.

        An unset variable or a URL of the wrong kind is a clear error; the URL is never shown.
        """
        inbound = self.inbound
        if inbound.rate_limiter == "local":
            return None
        name = inbound.rate_limiter_url_env
        schemes, example = _LIMITER_URLS[inbound.rate_limiter]
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
        passwords of the URL settings."""
        values = [os.environ.get(name) for name in self.secret_env_names()]
        passwords = [p for url in self.url_settings().values() for p in url.passwords()]
        return [v for v in values if v] + passwords

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


def _read_secret(env_name: str, key: str) -> str:
    value = os.environ.get(env_name, "")
    if not value:
        raise SettingsError(
            [f"{key}: environment variable {env_name} is not set; export {env_name}=<secret>"]
        )
    return value


_FIXES = {
    "literal_error": "use one of the allowed values",
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "int_parsing": "use a whole number",
    "float_parsing": "use a number",
    "list_type": "use a YAML list, e.g. [a, b]",
    "string_type": "use a string",
    "bool_parsing": "use true or false",
    "greater_than_equal": "raise it",
    "less_than_equal": "lower it",
    "greater_than": "raise it",
}


def _describe(error: dict[str, Any]) -> list[str]:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(error["type"])
    shown = shown_value(error["loc"], error.get("input"))
    suffix = f"{shown}; fix: {fix}" if fix else shown
    return [f"{key}: {part}{suffix}" for part in message.split(_PROBLEM_SEPARATOR)]


def parse_settings(data: Any, source: str = "settings", base: Path | None = None) -> Settings:
    """Validate a parsed YAML document; every problem is reported at once.

    Relative SQLite paths and `logs.dir` are resolved against `base` (the settings file's own
    folder when loaded from a file; the current directory at this call otherwise), so one
    settings file names the same files from any working directory.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(["(top level): must be a mapping of sections (general, outbound, ...)"])
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError([p for e in exc.errors() for p in _describe(e)], source) from None
    settings = _resolve_paths(settings, (base or Path.cwd()).resolve())
    _check_sqlite_files(settings, source)
    return settings


def _check_sqlite_files(settings: Settings, source: str) -> None:
    """SettingsError naming each `sqlite:///` setting whose file cannot be created or written."""
    urls = {
        "loyalty_store.url": settings.loyalty_store.url,
        "outbound.state_url": settings.outbound.state_url,
        "inbound.buffer_url": settings.inbound.buffer_url,
    }
    problems = [
        f"{key}: {problem}; {SQLITE_FIX}"
        for key, url in urls.items()
        if (problem := sqlite_file_problem(url)) is not None
    ]
    if problems:
        raise SettingsError(problems, source)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def url(value: SecretUrl) -> SecretUrl:
        return SecretUrl(resolve_sqlite_url(value.reveal(), base))

    logs_dir = Path(settings.logs.dir).expanduser()
    if settings.logs.dir.startswith("s3://"):  # an object store (logs/object_store.py)
        logs_dir = settings.logs.dir
    elif not logs_dir.is_absolute():
        logs_dir = (base / logs_dir).resolve()
    return settings.model_copy(
        update={
            "loyalty_store": settings.loyalty_store.model_copy(
                update={"url": url(settings.loyalty_store.url)}
            ),
            "outbound": settings.outbound.model_copy(
                update={"state_url": url(settings.outbound.state_url)}
            ),
            "inbound": settings.inbound.model_copy(
                update={"buffer_url": url(settings.inbound.buffer_url)}
            ),
            "logs": settings.logs.model_copy(update={"dir": str(logs_dir)}),
        }
    )


def settings_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--settings, else $SEGMENT_SYNC_SETTINGS, else data/segment_sync.yaml."""
    return Path(explicit or os.environ.get(SETTINGS_ENV_VAR) or DEFAULT_SETTINGS_PATH)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the settings file."""
    file = settings_path(path)
    named_by = (
        "--settings"
        if path
        else (f"${SETTINGS_ENV_VAR}" if os.environ.get(SETTINGS_ENV_VAR) else None)
    )
    return parse_settings(_read_yaml(file, named_by), str(file), file.resolve().parent)


def _read_yaml(file: Path, named_by: str | None) -> Any:
    """The parsed YAML document, or one SettingsError naming the file and the fix."""
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        fix = (
            f"check the path given by {named_by}, or copy data/segment_sync.example.yaml there"
            if named_by
            else "copy data/segment_sync.example.yaml there or pass --settings"
        )
        raise SettingsError([f"{file}: no such file; {fix}"]) from None
    except IsADirectoryError:
        raise SettingsError(
            [f"{file}: is a folder; pass the settings FILE, e.g. {file / 'segment_sync.yaml'}"]
        ) from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            [f"{file}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]
        ) from None
    except OSError as exc:
        raise SettingsError([f"{file}: cannot be read: {exc.strerror}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError([f"{file}: not valid YAML{yaml_problem(exc)}"]) from None
