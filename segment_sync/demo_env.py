"""`segment-sync demo env`: the running demo's environment, as `export` lines for another shell.

The demo records what it exported (its settings file, its Dagster home, which secrets it set to
the stand-ins' demo values, and the stand-ins it started) in `demo.env.json` beside its lock, and
removes it when it stops. Only the stand-ins' demo secrets are ever printed, and only while the
settings send to those stand-ins: a value the demo took from its own shell is never recorded or
printed, and settings that point at real Segment or Antavo endpoints print nothing at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from segment_sync.demo_guard import running_demo
from segment_sync.settings import (
    DEFAULT_SETTINGS_PATH,
    SETTINGS_ENV_VAR,
    Settings,
    SettingsError,
    load_settings,
)

RECORD_NAME = "demo.env.json"
# The stand-ins accept exactly these; they are public (docs/getting-started.md), not credentials.
DEMO_SECRETS = {
    "SEGMENT_WRITE_KEY": "demo-us-write-key",
    "ANTAVO_API_KEY": "demo-antavo-key",
    "ANTAVO_API_SECRET": "demo-antavo-secret",
    "SEGMENT_WEBHOOK_SECRET": "demo-webhook-secret",
}


class DemoEnvRefused(Exception):
    """`demo env` prints nothing; the message names why and what to do."""


@dataclass(frozen=True)
class DemoExports:
    """What a running demo exported to its children (secret values are never recorded)."""

    settings_file: str  # absolute
    segment_standin: str  # base URLs of the stand-ins the demo started
    antavo_standin: str
    dagster_home: str | None = None  # None: the demo runs without Dagster
    standin_secrets: list[str] = field(default_factory=list)  # names set to DEMO_SECRETS values
    own_secrets: list[str] = field(default_factory=list)  # names taken from the demo's shell


def settings_file_in_use() -> Path:
    """The demo's settings file: $SEGMENT_SYNC_SETTINGS, else data/segment_sync.yaml."""
    return Path(os.environ.get(SETTINGS_ENV_VAR) or DEFAULT_SETTINGS_PATH)


def demo_secrets_env(environ: dict[str, str]) -> tuple[dict[str, str], list[str], list[str]]:
    """The demo's secrets over `environ` (a variable already set keeps its value), the names
    holding a stand-in's demo value, and the names holding a value of the shell's own."""
    env = {name: environ.get(name) or value for name, value in DEMO_SECRETS.items()}
    own = [name for name, value in env.items() if value != DEMO_SECRETS[name]]
    return env, [name for name in DEMO_SECRETS if name not in own], own


def record_exports(data_dir: Path, exports: DemoExports) -> Path:
    """Write the record (owner-only, replaced whole) for `demo env` to read."""
    path = data_dir / RECORD_NAME
    partial = path.with_suffix(".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(exports), out)
    partial.replace(path)
    return path


def forget_exports(data_dir: Path) -> None:
    """The demo stopped: its record goes."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / RECORD_NAME).unlink()


def running_exports(data_dir: Path) -> tuple[str, DemoExports]:
    """(pid, exports) of the demo running with `data_dir`; DemoEnvRefused when none runs."""
    pid = running_demo(data_dir)
    if pid is None:
        raise DemoEnvRefused(
            f"no demo is running here ({data_dir / 'demo.lock'} is free): start it with "
            '`make run`, then run `eval "$(segment-sync demo env)"` in the other shell'
        )
    try:
        exports = DemoExports(**json.loads((data_dir / RECORD_NAME).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        raise DemoEnvRefused(
            "the demo is starting and has not recorded its environment yet; try again in a "
            "few seconds"
        ) from None
    return pid, exports


def export_lines(pid: str, exports: DemoExports, settings: Settings) -> list[str]:
    """The `export NAME=value` lines (and # comments) for a shell to eval.

    DemoEnvRefused when the settings send to anything but the demo's stand-ins.
    """
    targets = [
        ("outbound", settings.outbound.endpoint, exports.segment_standin, "Segment"),
        ("inbound", settings.inbound.endpoint, exports.antavo_standin, "Antavo"),
    ]
    for direction, endpoint, standin, service in targets:
        if str(endpoint) != standin:
            raise DemoEnvRefused(
                f"{exports.settings_file} sends {direction} to {endpoint}, not to the demo's "
                f"{service} stand-in ({standin}): `demo env` prints only the stand-ins' demo "
                "secrets; export the real secrets yourself"
            )
    lines = [
        f"# the running demo's environment (pid {pid}); its secrets are the LOCAL STAND-INS' "
        "demo values, not real credentials",
        _export(SETTINGS_ENV_VAR, exports.settings_file),
    ]
    if exports.dagster_home:
        lines.append(_export("DAGSTER_HOME", exports.dagster_home))
    lines += [_export(name, DEMO_SECRETS[name]) for name in exports.standin_secrets]
    lines += [
        f"# {name}: not printed; the demo took it from its own shell (not a stand-in secret)"
        for name in exports.own_secrets
    ]
    return lines


def demo_env_lines(settings_file: Path) -> list[str]:
    """What `segment-sync demo env` prints for the demo whose settings file is `settings_file`."""
    pid, exports = running_exports(settings_file.parent)
    try:
        settings = load_settings(exports.settings_file)
    except SettingsError as exc:
        raise DemoEnvRefused(str(exc)) from None
    return export_lines(pid, exports, settings)


def _export(name: str, value: str) -> str:
    return f"export {name}={shlex.quote(value)}"
