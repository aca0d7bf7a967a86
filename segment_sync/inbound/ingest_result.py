"""What one inbound ingest did (counts, success) and the errors that stop it early."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from segment_sync.antavo import faults
from segment_sync.antavo.client import EventResult
from segment_sync.settings import InboundSettings


@dataclass
class IngestCounts:
    items: int = 0
    done: int = 0
    failed: int = 0
    unknown: int = 0  # Antavo's answer (or none) did not account for them: maybe registered
    retried: int = 0
    no_match: int = 0
    antavo_events: int = 0
    requests: int = 0
    left_pending: int = 0  # given back untouched: a credential error or a failed log write
    unlogged: int = 0  # events Antavo registered whose log write failed (a rerun repeats them)
    held_elsewhere: int = 0  # pending items another live run still holds


@dataclass
class IngestResult:
    run_id: str
    upto: int
    counts: IngestCounts = field(default_factory=IngestCounts)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """A run fails when an item failed for good, has an unknown outcome, waits for a retry or
        was left pending: only a run that knows every item was delivered succeeds."""
        c = self.counts
        return c.failed == 0 and c.unknown == 0 and c.retried == 0 and c.left_pending == 0

    def failure_message(self) -> str:
        c = self.counts
        message = (
            f"{c.failed} item(s) failed, {c.retried} will be retried, {c.left_pending} left pending"
        )
        if c.unknown:
            message += (
                f"; {c.unknown} item(s) have an unknown outcome (Antavo did not answer, or its "
                "answer did not account for them, so they may be registered): check them in Antavo, then `replay "
                "inbound --include-unknown` only for what is missing"
            )
        return message


class IngestError(RuntimeError):
    """A run stopped early; `result` holds what it did before stopping."""

    def __init__(self, message: str, result: IngestResult) -> None:
        super().__init__(message)
        self.result = result


class CredentialError(IngestError):
    """Antavo answered 401/403: the key, secret or stack is wrong, not the data."""


class LogWriteError(IngestError):
    """The inbound log could not be written, so no item was marked."""


class BufferMarkError(IngestError):
    """The buffer could not record what Antavo answered: sending stopped, the items stay claimed."""


class CustomerStoreError(IngestError):
    """The loyalty store could not resolve external customer IDs: the claimed items stay pending."""


class AntavoFaultError(IngestError):
    """Antavo is down, throttling or not at inbound.base_url: no event's fault, items pending."""


class NoMappingError(IngestError):
    """No mapping is enabled: nothing was claimed, every item stays pending."""


def credential_message(inbound: InboundSettings, reason: str, pending: int) -> str:
    """One line naming the settings (and env var names, never values) to fix."""
    return (
        f"Antavo refused the credentials ({reason}); stopped sending, {pending} item(s) stay "
        f"pending. Fix inbound.api_key_env (${inbound.api_key_env}), inbound.api_secret_env "
        f"(${inbound.api_secret_env}) or inbound.stack ({inbound.stack!r}), then rerun"
    )


def service_message(inbound: InboundSettings, answer: EventResult, pending: int) -> str:
    """One line: what Antavo (or the network) did, that no item was marked, and what to fix."""
    said = (answer.error or "no answer")[:200]
    if answer.fault in faults.STOPPING_UNKNOWN:
        return unsure_message(inbound, answer, pending)
    fix = {
        faults.UNREACHABLE: f"could not connect to Antavo at {inbound.endpoint} ({said}); check "
        "inbound.base_url and inbound.stack, and that the network reaches it",
        faults.RATE_LIMITED: f"Antavo rate limited the requests through every retry ({said}); "
        f"lower inbound.rate_limit_per_minute ({inbound.rate_limit_per_minute}) to the stack's "
        "limit, or share the limit across runs (inbound.rate_limiter)",
        faults.MISROUTED: f"what answers at inbound.base_url ({inbound.endpoint}) is not "
        f"Antavo's Events API ({said}); check inbound.base_url (its path) and inbound.stack",
    }.get(
        answer.fault or "",
        f"Antavo is unavailable: it failed every retry ({said}); it is down or overloaded",
    )
    return (
        f"{fix}. Sending stopped; no item was marked failed and {pending} item(s) stay pending "
        "with no attempt used: the next run sends them"
    )


def unsure_message(inbound: InboundSettings, answer: EventResult, pending: int) -> str:
    """One line for an answer after which a request's events may be registered: they are
    `unknown`, and the run stopped so the rest of the backlog stays pending."""
    if answer.fault == faults.UNANSWERED:
        said = answer.error or "Antavo did not answer a request it was sent"
        what = said.removeprefix("outcome unknown: ").split(", so Antavo may have")[0][:400]
        what += ": it may have registered these events"
    elif answer.fault == faults.UNREADABLE:
        said = (answer.error or "").removeprefix("outcome unknown: ").split(", so ")[0][:200]
        what = (
            f"what answers at inbound.base_url ({inbound.endpoint}) gave a 2xx answer that is "
            f"not Antavo's JSON answer ({said}); check inbound.base_url and inbound.stack. If "
            "it is Antavo, it may have registered that request's events"
        )
    else:
        what = (
            f"Antavo answered HTTP {answer.status_code} after the request was sent: it may "
            "have registered these events"
        )
    return (
        f"{what}, so their items have an unknown outcome; check them in Antavo before "
        "`replay inbound --include-unknown`. The run stopped, the rest stays pending "
        f"({pending} item(s)): the next run sends them"
    )
