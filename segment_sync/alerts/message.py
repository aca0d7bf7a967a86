"""The text of one alert: what failed, why, and a link to the run; no Dagster, no HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from segment_sync.redaction import Redactor, SecretUrl, redact_url

MAX_REASON_CHARS = 600  # a chat message, not a log: the run page has the rest
PREFIX = "[segment-sync]"
_WHITESPACE = re.compile(r"\s+")
# An expected failure's description follows its class name: the person needs the description.
_FAILURE_CLASS = re.compile(r"\bdagster\._core\.definitions\.events\.Failure: ")


class AlertKind(StrEnum):
    """What an alert is about; the values are those of `alerts.on`."""

    RUN_FAILURE = "run_failure"
    CHECK_FAILURE = "check_failure"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure worth telling a person about."""

    kind: AlertKind
    name: str  # the job, or the check as "asset / check"
    reason: str
    run_id: str
    will_retry: bool = False


def run_url(ui_base_url: str | SecretUrl, run_id: str) -> str:
    """The run's page in the Dagster UI (a password in the URL masked)."""
    return f"{redact_url(ui_base_url).rstrip('/')}/runs/{run_id}"


def shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` on one line, cut at `limit` characters with an ellipsis."""
    line = _WHITESPACE.sub(" ", _FAILURE_CLASS.sub("", text)).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (`<url|label>`): escape them as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_text(failure: Failure, ui_base_url: str | SecretUrl, redactor: Redactor) -> str:
    """The message: redacted before it is shortened, so a cut never leaves half a secret."""
    title = "Sync run failed" if failure.kind is AlertKind.RUN_FAILURE else "Check failed"
    reason = shorten(redactor.text(failure.reason) or "") or "no reason was recorded"
    if failure.will_retry:
        reason += " (Dagster will retry the run)"
    lines = [
        f"{PREFIX} {title}: {slack_escape(failure.name)}",
        f"Why: {slack_escape(reason)}",
        f"Run: {run_url(ui_base_url, failure.run_id)}",
    ]
    return redactor.text("\n".join(lines)) or ""
