"""Running it: check thresholds, maintenance, alerts and the executor."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from segment_sync.redaction import SecretUrl
from segment_sync.settings.base import Section
from segment_sync.settings.values import HttpUrl, env_name, optional_env_name


class CheckSettings(Section):
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


class MaintenanceSettings(Section):
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


class AlertSettings(Section):
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


class ExecutorSettings(Section):
    """Where runs execute their steps: in the run's own processes, or on Celery workers."""

    kind: Literal["multiprocess", "celery"] = "multiprocess"
    # URLs may carry passwords: only the variables' names are written here.
    celery_broker_url_env: str = "DAGSTER_CELERY_BROKER_URL"
    celery_backend_url_env: str = "DAGSTER_CELERY_BACKEND_URL"

    _check_env = field_validator("celery_broker_url_env", "celery_backend_url_env")(env_name)
