"""Segment's mapping-kit (`@segment/actions-core`): resolve field mappings against an event.

A mapping pairs a trigger (``triggers.py``) with field mappings in this language:

* ``{"@path": "$.properties.total"}``: the value at a path (``$.`` optional; ``a.b``, ``a[0].b``).
* ``{"@template": "Hi {{traits.name}}"}``: mustache-like text; ``{{x}}`` is HTML-escaped and
  ``{{{x}}}`` is not, exactly as mapping-kit renders it; a missing value renders as ``""``.
* ``{"@literal": value}``: the value itself (resolved, as mapping-kit does).
* ``{"@if": {"exists" | "blank": ..., "then": ..., "else": ...}}``: ``exists`` is true when the
  value is neither missing nor null; ``blank`` also needs it not to be loosely equal to ``""``.
* Any other object or list resolves member by member; plain values are literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from segment_sync.inbound.mapping.js_values import (
    UNDEFINED,
    js_string,
    loosely_empty,
    truthy,
    type_name,
)

DIRECTIVES = ("@path", "@template", "@literal", "@if")


class MappingError(ValueError):
    """An event that cannot be turned into an Antavo request (e.g. a missing required field)."""


def resolve(mapping: Any, event: dict[str, Any]) -> Any:
    """Resolve mapping-kit directives against an event; an unresolved value becomes None."""
    value = _strip_undefined(evaluate(mapping, event))
    return None if value is UNDEFINED else value


def directive_problems(mapping: Any) -> list[str]:
    """Configuration problems in a field mapping (unknown or malformed directives)."""
    problems: list[str] = []
    _check(mapping, problems)
    return problems


# --- directive resolution (mapping-kit) ----------------------------------------------------------


def _is_directive(value: Any) -> bool:
    """An object whose keys are @directives (plus an optional _metadata)."""
    if not isinstance(value, dict):
        return False
    keys = list(value)
    if not any(isinstance(k, str) and k.startswith("@") for k in keys):
        return False
    return all(isinstance(k, str) and (k.startswith("@") or k == "_metadata") for k in keys)


def evaluate(mapping: Any, event: Any) -> Any:
    """mapping-kit's resolve(): directives run, containers recurse, raw values stay; a missing
    value is UNDEFINED."""
    if isinstance(mapping, list):
        return [evaluate(item, event) for item in mapping]
    if not isinstance(mapping, dict):
        return mapping
    if _is_directive(mapping):
        name = next(k for k in mapping if k.startswith("@"))
        return _run_directive(name, mapping[name], event)
    return {key: evaluate(value, event) for key, value in mapping.items()}


def compiled(mapping: Any) -> Callable[[Any], Any]:
    """`lambda event: evaluate(mapping, event)`, with the mapping's shape worked out once: the
    ingest resolves the same field mappings for every event."""
    if isinstance(mapping, list):
        parts = [compiled(item) for item in mapping]
        return lambda event: [part(event) for part in parts]
    if not isinstance(mapping, dict):
        return lambda event: mapping
    if not _is_directive(mapping):
        members = [(key, compiled(value)) for key, value in mapping.items()]
        if len(members) == 1:  # e.g. data {"points": ...}: no comprehension per event
            ((only, member),) = members
            return lambda event: {only: member(event)}
        return lambda event: {key: member(event) for key, member in members}
    name = next(k for k in mapping if k.startswith("@"))
    options = mapping[name]
    if name == "@literal":
        return compiled(options)
    if name == "@path" and isinstance(options, str):
        path = options.replace("$.", "", 1)
        if path in ("", "."):
            return lambda event: event
        return _path_walker(_PATH_PART.findall(path))
    return lambda event: _run_directive(name, options, event)


def _run_directive(name: str, options: Any, event: Any) -> Any:
    """Run one directive."""
    if name == "@path":
        path = evaluate(options, event)
        if not isinstance(path, str):
            raise MappingError(f"@path: expected string, got {type_name(path)}")
        return _get(event, path.replace("$.", "", 1))
    if name == "@template":
        template = evaluate(options, event)
        if not isinstance(template, str):
            raise MappingError(f"@template: expected string, got {type_name(template)}")
        return _render(template, event)
    if name == "@literal":
        return evaluate(options, event)
    if name == "@if":
        return _run_if(options, event)
    raise MappingError(f"{name} is not a valid directive, got undefined")


def _run_if(options: Any, event: Any) -> Any:
    """mapping-kit's @if with an "exists" or a "blank" condition."""
    if not isinstance(options, dict):
        raise MappingError('@if requires an object with an "exists" key')
    if not truthy(options.get("exists", UNDEFINED)) and not truthy(options.get("blank", UNDEFINED)):
        raise MappingError('@if requires an "exists" key or a "blank" key')
    if "exists" in options:
        value = evaluate(options["exists"], event)
        condition = value is not UNDEFINED and value is not None
    else:
        value = evaluate(options["blank"], event)
        condition = value is not UNDEFINED and value is not None and not loosely_empty(value)
    if condition and "then" in options:
        return evaluate(options["then"], event)
    if not condition and truthy(options.get("else", UNDEFINED)):
        return evaluate(options["else"], event)
    return UNDEFINED


_PATH_PART = re.compile(r"[^\[.\]]+")


def _get(obj: Any, path: str) -> Any:
    """mapping-kit's get(): dotted and bracketed paths; '' or '.' is the root."""
    if path in ("", "."):
        return obj
    return _walk(obj, _PATH_PART.findall(path))


def _path_walker(keys: list[str]) -> Callable[[Any], Any]:
    """`lambda event: _walk(event, keys)`, reading one or two object keys at once (most paths:
    `$.userId`, `$.properties.points`); anything else (a list on the way) walks as written."""
    if len(keys) == 1:
        (key,) = keys
        return lambda event: (
            event.get(key, UNDEFINED) if type(event) is dict else _walk(event, keys)
        )
    if len(keys) == 2:
        first, second = keys

        def walk(event: Any) -> Any:
            if type(event) is dict:
                inner = event.get(first, UNDEFINED)
                if type(inner) is dict:
                    return inner.get(second, UNDEFINED)
            return _walk(event, keys)

        return walk
    return lambda event: _walk(event, keys)


def _walk(obj: Any, keys: list[str]) -> Any:
    """The value `keys` lead to from `obj` (object keys, list indexes), or UNDEFINED."""
    current = obj
    for key in keys:
        if isinstance(current, dict):
            current = current.get(key, UNDEFINED)
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return UNDEFINED
    return current


_HTML_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#39;",
    "/": "&#x2F;",
    "`": "&#x60;",
    "=": "&#x3D;",
}
_TRIPLE = re.compile(r"\{\{\{([^}]+)\}\}\}")
_DOUBLE = re.compile(r"\{\{([^}]+)\}\}")


def _render(template: str, event: Any) -> str:
    """mapping-kit's template render: {{{raw}}} first, then HTML-escaped {{value}}."""

    def raw(match: re.Match[str]) -> str:
        value = _get(event, match.group(1).strip())
        return "" if value is UNDEFINED or value is None else js_string(value)

    def escaped(match: re.Match[str]) -> str:
        value = _get(event, match.group(1).strip())
        if value is UNDEFINED or value is None:
            return ""
        if isinstance(value, str):
            return re.sub(r"[&<>\"'`=/]", lambda m: _HTML_ENTITIES[m.group(0)], value)
        return js_string(value)

    return _DOUBLE.sub(escaped, _TRIPLE.sub(raw, template))


def _strip_undefined(value: Any) -> Any:
    """mapping-kit's removeUndefined: drop undefined object keys, undefined list items -> None."""
    if isinstance(value, dict):
        return {k: _strip_undefined(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [None if item is UNDEFINED else _strip_undefined(item) for item in value]
    return value


def _check(mapping: Any, problems: list[str]) -> None:
    """Collect malformed directives anywhere in a mapping value."""
    if isinstance(mapping, list):
        for item in mapping:
            _check(item, problems)
        return
    if not isinstance(mapping, dict):
        return
    directive_keys = [k for k in mapping if isinstance(k, str) and k.startswith("@")]
    if not directive_keys:
        for value in mapping.values():
            _check(value, problems)
        return
    others = [k for k in mapping if k not in directive_keys and k != "_metadata"]
    if others:
        problems.append(
            f"a directive cannot be mixed with plain keys ({', '.join(map(repr, others))}); "
            f"put {directive_keys[0]} in its own object"
        )
        return
    if len(directive_keys) > 1:
        problems.append(f"only one directive per object, got {', '.join(directive_keys)}")
        return
    name = directive_keys[0]
    options = mapping[name]
    if name not in DIRECTIVES:
        problems.append(f"unknown directive {name}; use one of {', '.join(DIRECTIVES)}")
    elif name in ("@path", "@template"):
        if isinstance(options, dict | list):
            _check(options, problems)
        elif not isinstance(options, str):
            example = '"$.properties.total"' if name == "@path" else '"{{properties.name}}"'
            problems.append(f'{name} needs a string, e.g. {{"{name}": {example}}}')
    elif name == "@literal":
        _check(options, problems)
    else:
        if not isinstance(options, dict):
            problems.append('@if needs an object with "exists" or "blank", "then" and "else"')
            return
        if not truthy(options.get("exists", UNDEFINED)) and not truthy(
            options.get("blank", UNDEFINED)
        ):
            problems.append('@if needs an "exists" or a "blank" key')
        unknown = [k for k in options if k not in ("exists", "blank", "then", "else")]
        if unknown:
            problems.append(f"@if has unknown keys {', '.join(map(repr, unknown))}")
        for key in ("exists", "blank", "then", "else"):
            if key in options:
                _check(options[key], problems)
