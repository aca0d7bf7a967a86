"""Reading the settings file: YAML, validation with every problem at once, paths resolved."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from segment_sync.db import SQLITE_FIX, resolve_sqlite_url, sqlite_file_problem
from segment_sync.redaction import Redactor, SecretUrl
from segment_sync.settings.base import PROBLEM_SEPARATOR, SettingsError
from segment_sync.settings.root import Settings
from segment_sync.settings.values import shown_value, yaml_problem
from segment_sync.settings_location import DEFAULT_SETTINGS_PATH, SETTINGS_ENV_VAR

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
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


def describe(error: dict[str, Any]) -> list[str]:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(error["type"])
    shown = shown_value(error["loc"], error.get("input"))
    suffix = f"{shown}; fix: {fix}" if fix else shown
    return [f"{key}: {part}{suffix}" for part in message.split(PROBLEM_SEPARATOR)]


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
        problems = [p for e in exc.errors() for p in describe(e)]
        raise SettingsError(_redacted(problems, data), source) from None
    settings = _resolve_paths(settings, (base or Path.cwd()).resolve())
    try:
        _check_sqlite_files(settings, source)
    except SettingsError as exc:
        raise SettingsError(_redacted(exc.problems, data), source) from None
    return settings


def _redacted(problems: list[str], data: Any) -> list[str]:
    """`problems` with every URL password written anywhere in the document masked, and each
    piece of it a parser may quote (a validator's message or a `(got ...)` may hold one)."""
    redactor = Redactor(p for url in _urls_written(data) for p in url.passwords_and_pieces())
    return [redactor.text(problem) or "" for problem in problems]


def _urls_written(data: Any) -> Iterator[SecretUrl]:
    """Every URL in the document's values, also one inside another (`?endpoint=http://...`),
    each read from its scheme to the end of its text (the widest reading). A loop, not a
    recursion: a deeply nested document is refused, not a crash here. Each list and mapping is
    read once: a YAML alias inside itself (`a: &x [*x]`) is refused, not an endless loop."""
    pending, seen = [data], set()
    while pending:
        value = pending.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            pending += value.values()
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, str) and "://" in value:
            for scheme in _SCHEME.finditer(value):
                yield SecretUrl(value[scheme.start() :])


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
    except RecursionError:  # PyYAML builds nested [ / { (and - / key:) levels recursively
        raise SettingsError(
            [
                f"{file}: nested too deeply to read (hundreds of lists or mappings inside "
                "each other, e.g. unbalanced [ or {); a settings file needs a few levels: fix "
                "the nesting"
            ]
        ) from None
