"""What every settings section shares: the error that names each bad key, and the base model."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

PROBLEM_SEPARATOR = "\x1e"  # several problems from one validator, split again in loading.describe


class SettingsError(ValueError):
    """The settings file is wrong; the message names every bad key and how to fix it."""

    def __init__(self, problems: list[str], source: str = "settings") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class Section(BaseModel):
    """A section of the settings file: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(env_name: str, key: str) -> str:
    """The value of the environment variable `env_name`; unset, an error naming `key`."""
    value = os.environ.get(env_name, "")
    if not value:
        raise SettingsError(
            [f"{key}: environment variable {env_name} is not set; export {env_name}=<secret>"]
        )
    return value
