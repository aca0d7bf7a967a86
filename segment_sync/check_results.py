"""What one connection check (`settings check --connect`) found: proven right, proven wrong, or
not provable from here. Only a proven wrong fails the command."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "FAILED"
    NOT_VERIFIED = "not verified"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One checked thing (e.g. "Segment region") and what was found, in words for the user;
    the text names variables and settings, never a secret's value."""

    name: str
    outcome: Outcome
    text: str

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    def lines(self) -> list[str]:
        """`[outcome] name: text`, the text's own lines indented under it."""
        first, *rest = self.text.splitlines() or [""]
        return [f"[{self.outcome}] {self.name}: {first}", *(f"  {line}" for line in rest)]
