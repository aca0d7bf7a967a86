"""The settings reference page, rendered from the pydantic models so it cannot drift.

Keys, types, allowed values, bounds and defaults come from `segment_sync.settings`; only the
prose (what a key means) comes from `settings.meanings`, and `missing_meanings` names any key
without it. The docs build (`scripts/docs_hooks.py`) puts the tables where `docs/settings.md` holds
the marker; `python -m segment_sync.settings.reference` prints them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from segment_sync.redaction import SecretUrl
from segment_sync.settings.meanings import MEANINGS, SECTIONS
from segment_sync.settings.root import Settings

MARKER = "<!-- settings-reference -->"
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


@dataclass(frozen=True)
class Row:
    """One setting: its dotted key, what it takes, its default and what it means."""

    key: str
    takes: str
    default: str
    meaning: str


def sections(root: type[BaseModel] = Settings) -> list[tuple[str, list[Row]]]:
    """(section key, rows) in the order of the models; a nested model is its own section."""
    found: list[tuple[str, list[Row]]] = []
    for name, field in root.model_fields.items():
        found += list(_section(name, _model_of(field.annotation)))
    return found


def _section(prefix: str, model: type[BaseModel]) -> Iterator[tuple[str, list[Row]]]:
    rows: list[Row] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}"
        rows.append(Row(key, _takes(key, field), _default(field), MEANINGS.get(key, "")))
        inner = _model_of(field.annotation)
        if inner is not None:
            nested.append((f"{key}[]" if _is_list(field.annotation) else key, inner))
    yield prefix, rows
    for key, inner in nested:
        yield from _section(key, inner)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds (directly or as a list's items), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if _is_list(annotation):
        return _model_of(typing.get_args(annotation)[0])
    return None


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _takes(key: str, field: FieldInfo) -> str:
    """What a key takes: a type in words, its allowed values or bounds."""
    annotation, optional = _strip_none(field.annotation)
    text = _type_words(key, annotation, field.metadata)
    bounds = [
        f"{sign} {_number(getattr(m, attr))}"
        for kind, attr, sign in _BOUNDS
        for m in field.metadata
        if isinstance(m, kind)
    ]
    if bounds:
        text += ", " + " and ".join(bounds)
    return f"{text}, or `null`" if optional else text


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _strip_none(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    if union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return annotation, False


def _type_words(name: str, annotation: Any, metadata: list[Any]) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _type_words(name, base, [*metadata, *extra])
    if origin is list:
        (item,) = typing.get_args(annotation)
        if _model_of(item) is not None:
            return f"list of mappings (see `{name}[]`)"
        if typing.get_origin(item) is typing.Literal:
            return "list of " + ", ".join(f"`{v}`" for v in typing.get_args(item))
        return f"list of {_type_words(name, item, [])}s"
    if origin is dict:
        return "mapping"
    if annotation is SecretUrl:
        validators = {getattr(getattr(m, "func", None), "__name__", "") for m in metadata}
        return "database URL" if "_db_url" in validators else "http(s) URL"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if name.endswith("_env") and annotation is str:
        return "environment variable name"
    return {str: "text", int: "integer", float: "number", bool: "`true` or `false`"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(its keys' defaults)"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"{value // (1024 * 1024)} MiB"
    if isinstance(value, float) and value.is_integer():
        return f"`{value:g}`"
    return f"`{value}`"


def missing_meanings(root: type[BaseModel] = Settings) -> list[str]:
    """Keys of the models with no meaning, and meanings (or sections) naming no key."""
    keys = {row.key for _, rows in sections(root) for row in rows}
    section_keys = {key for key, _ in sections(root)}
    missing = sorted(k for k in keys if not MEANINGS.get(k, "").strip())
    stale = sorted(set(MEANINGS) - keys) + sorted(set(SECTIONS) - section_keys)
    unexplained = sorted(k for k in section_keys if not SECTIONS.get(k, "").strip())
    return (
        [f"{k}: no meaning in settings.meanings.MEANINGS" for k in missing]
        + [f"{k}: no such setting (remove it from settings.meanings)" for k in stale]
        + [
            f"{k}: section without an introduction in settings.meanings.SECTIONS"
            for k in unexplained
        ]
    )


def render(root: type[BaseModel] = Settings) -> str:
    """The reference as Markdown: one heading and table per section."""
    problems = missing_meanings(root)
    if problems:
        raise ValueError("the settings reference is incomplete:\n  " + "\n  ".join(problems))
    parts: list[str] = []
    for key, rows in sections(root):
        parts += [f"### `{key}`", "", SECTIONS[key], ""]
        parts += ["| key | takes | default | meaning |", "| --- | --- | --- | --- |"]
        parts += [f"| `{r.key}` | {r.takes} | {r.default} | {_cell(r.meaning)} |" for r in rows]
        parts.append("")
    return "\n".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    print(render())
