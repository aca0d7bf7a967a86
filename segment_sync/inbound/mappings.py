"""Field mappings for the inbound path, as Segment's Antavo (Actions) destination applies them.

A mapping pairs a trigger (see ``triggers.py``) with field mappings written in Segment's
mapping-kit language (``@segment/actions-core``):

* ``{"@path": "$.properties.total"}``: the value at a path (``$.`` optional; ``a.b``, ``a[0].b``).
* ``{"@template": "Hi {{traits.name}}"}``: mustache-like text; ``{{x}}`` is HTML-escaped and
  ``{{{x}}}`` is not, exactly as mapping-kit renders it; a missing value renders as ``""``.
* ``{"@literal": value}``: the value itself (resolved, as mapping-kit does).
* ``{"@if": {"exists" | "blank": ..., "then": ..., "else": ...}}``: ``exists`` is true when the
  value is neither missing nor null; ``blank`` also needs it not to be loosely equal to ``""``.
* Any other object or list resolves member by member; plain values are literals.

Turning the resolved fields into the Antavo request follows what the destination does after
mapping-kit: empty values (missing, ``null``, ``""``) are removed at every depth, string fields are
coerced to strings the way Ajv's ``coerceTypes: "array"`` does (``3612345678`` becomes
``"3612345678"``), and a missing required field fails with Ajv's human-readable message, e.g.
``The root value is missing the required field 'customer'.``

Two actions, fields and defaults as in ``packages/destination-actions/src/destinations/antavo``:

* "Loyalty events" (``loyalty_event``, default trigger ``type = "track"``): ``customer`` (required,
  default ``$.userId``), ``action`` (required, no default), ``account``, ``data`` (object).
* "Profile updates" (``profile_update``, default trigger ``type = "identify"``): ``customer``
  (required, default ``$.userId``), ``account`` (default empty), ``data`` (required object, defaults
  first_name, last_name, email, birth_date (``$.traits.birthday``), gender, language, phone,
  mobile_phone from ``$.traits``); the Antavo action is always ``profile``.

User field mappings replace the action's defaults field by field (``data`` is one field: mapping it
replaces the whole default ``data`` object). With the multi-accounts setting on, ``account`` is
required as well.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from segment_sync.inbound.triggers import (
    TriggerSyntaxError,
    js_string,
    parse_trigger,
    trigger_matches,
)

__all__ = [
    "ACTIONS",
    "LOYALTY_EVENT",
    "PROFILE_UPDATE",
    "ActionSpec",
    "Mapping",
    "MappingError",
    "MappingOutcome",
    "apply_mappings",
    "build_antavo_event",
    "default_mappings",
    "resolve",
]

LOYALTY_EVENT = "loyalty_event"
PROFILE_UPDATE = "profile_update"
ANTAVO_PROFILE_ACTION = "profile"
DIRECTIVES = ("@path", "@template", "@literal", "@if")

_UNDEFINED: Any = type("_Undefined", (), {"__repr__": lambda self: "undefined"})()


class MappingError(ValueError):
    """An event that cannot be turned into an Antavo request (e.g. a missing required field)."""


@dataclass(frozen=True)
class ActionSpec:
    """What one Antavo (Actions) action accepts: fields, defaults, required fields."""

    key: str
    title: str
    default_trigger: str
    fields: tuple[str, ...]
    required: tuple[str, ...]
    string_fields: tuple[str, ...]
    defaults: AbstractMapping[str, Any]
    data_string_fields: tuple[str, ...] = ()


_PROFILE_DATA_DEFAULTS = {
    "first_name": {"@path": "$.traits.first_name"},
    "last_name": {"@path": "$.traits.last_name"},
    "email": {"@path": "$.traits.email"},
    "birth_date": {"@path": "$.traits.birthday"},
    "gender": {"@path": "$.traits.gender"},
    "language": {"@path": "$.traits.language"},
    "phone": {"@path": "$.traits.phone"},
    "mobile_phone": {"@path": "$.traits.mobile_phone"},
}

ACTIONS: AbstractMapping[str, ActionSpec] = MappingProxyType(
    {
        LOYALTY_EVENT: ActionSpec(
            key=LOYALTY_EVENT,
            title="Loyalty events",
            default_trigger='type = "track"',
            fields=("customer", "action", "account", "data"),
            required=("customer", "action"),
            string_fields=("customer", "action", "account"),
            defaults=MappingProxyType({"customer": {"@path": "$.userId"}}),
        ),
        PROFILE_UPDATE: ActionSpec(
            key=PROFILE_UPDATE,
            title="Profile updates",
            default_trigger='type = "identify"',
            fields=("customer", "account", "data"),
            required=("customer", "data"),
            string_fields=("customer", "account"),
            defaults=MappingProxyType(
                {
                    "customer": {"@path": "$.userId"},
                    "account": "",
                    "data": _PROFILE_DATA_DEFAULTS,
                }
            ),
            data_string_fields=tuple(_PROFILE_DATA_DEFAULTS),
        ),
    }
)


@dataclass(frozen=True)
class Mapping:
    """One configured mapping: a name, an action, a trigger and field mappings."""

    name: str
    action: str
    trigger: str
    fields: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    @property
    def spec(self) -> ActionSpec | None:
        """The action's definition, or None for an unknown action."""
        return ACTIONS.get(self.action)

    def effective_fields(self) -> dict[str, Any]:
        """The action's default field mappings with this mapping's fields replacing them."""
        spec = self.spec
        merged = copy.deepcopy(dict(spec.defaults)) if spec else {}
        merged.update(copy.deepcopy(self.fields))
        return merged

    @cached_property
    def merged_fields(self) -> dict[str, Any]:
        """effective_fields() computed once: shared by every event, so never mutate it."""
        return self.effective_fields()

    def validate(self, multi_accounts: bool) -> list[str]:
        """Readable configuration errors, each naming the mapping and the field; empty if fine."""
        label = f"Mapping {self.name!r}"
        spec = self.spec
        if spec is None:
            known = ", ".join(f"{key!r} ({a.title})" for key, a in ACTIONS.items())
            return [f"{label}: unknown action {self.action!r}; use one of {known}."]
        label = f"Mapping {self.name!r} ({spec.title})"
        errors: list[str] = []
        if not isinstance(self.trigger, str):
            errors.append(f"{label}: field 'trigger' must be a string like {spec.default_trigger}.")
        else:
            try:
                parse_trigger(self.trigger)
            except TriggerSyntaxError as exc:
                errors.append(f"{label}: field 'trigger' does not parse. {exc}")
        if not isinstance(self.fields, dict):
            errors.append(f"{label}: 'fields' must be an object of field mappings.")
            return errors
        for name in self.fields:
            if name not in spec.fields:
                errors.append(
                    f"{label}: unknown field {name!r}; {spec.title} fields are "
                    f"{', '.join(spec.fields)}."
                )
        fields = self.effective_fields()
        required = list(spec.required) + (["account"] if multi_accounts else [])
        for name in required:
            if _is_unmapped(fields.get(name, _UNDEFINED)):
                errors.append(_missing_field_message(label, name, multi_accounts))
        for name in spec.fields:
            if name in fields:
                errors.extend(
                    f"{label}: field {name!r}: {problem}"
                    for problem in directive_problems(fields[name])
                )
        if "data" in fields and not _could_be_object(fields["data"]):
            errors.append(
                f"{label}: field 'data' must map to an object, e.g. "
                '{"points": {"@path": "$.properties.points"}} or {"@path": "$.properties"}.'
            )
        return errors


@dataclass(frozen=True)
class MappingOutcome:
    """What one matching mapping made of an event: an Antavo event, or the error why not."""

    mapping_name: str
    antavo_event: dict[str, Any] | None
    error: str | None


def default_mappings() -> list[Mapping]:
    """The mapping used when the settings list none: Segment's default "Profile updates"."""
    spec = ACTIONS[PROFILE_UPDATE]
    return [Mapping(name=spec.title, action=PROFILE_UPDATE, trigger=spec.default_trigger)]


def apply_mappings(
    mappings: list[Mapping], event: dict[str, Any], multi_accounts: bool
) -> list[MappingOutcome]:
    """One outcome per enabled mapping whose trigger matches; [] means no mapping matched."""
    outcomes: list[MappingOutcome] = []
    for mapping in mappings:
        if not mapping.enabled or not trigger_matches(mapping.trigger, event):
            continue
        try:
            body = build_antavo_event(mapping, event, multi_accounts)
        except MappingError as exc:
            outcomes.append(MappingOutcome(mapping.name, None, str(exc)))
        else:
            outcomes.append(MappingOutcome(mapping.name, body, None))
    return outcomes


def build_antavo_event(mapping: Mapping, event: dict[str, Any], multi_accounts: bool) -> dict:
    """The Antavo request body {customer, action, data, account?} for one event and mapping."""
    spec = mapping.spec
    if spec is None:
        raise MappingError(f"Mapping {mapping.name!r} has an unknown action {mapping.action!r}.")
    if not isinstance(event, dict):
        raise MappingError(f"data must be an object, got {_type_name(event)}")
    fields = mapping.merged_fields
    payload: dict[str, Any] = {}
    for name in spec.fields:  # unknown fields are dropped, as Ajv's removeAdditional does
        if name in fields:
            value = _remove_empty(_resolve(fields[name], event))
            if value is not _UNDEFINED:
                payload[name] = value

    errors: list[str] = []
    required = list(spec.required) + (["account"] if multi_accounts else [])
    for name in required:
        if name not in payload:
            errors.append(f"The root value is missing the required field '{name}'.")
    for name in spec.string_fields:
        if name in payload:
            payload[name] = _coerce_string(payload[name], f"/{name}", errors)
    if "data" in payload:
        data = payload["data"]
        if not isinstance(data, dict):
            errors.append(f"The value at /data must be an object but it was {_article_type(data)}.")
        else:
            for name in spec.data_string_fields:
                if name in data:
                    data[name] = _coerce_string(data[name], f"/data/{name}", errors)
    if errors:
        raise MappingError(" ".join(errors))

    if spec.key == PROFILE_UPDATE:
        payload["action"] = ANTAVO_PROFILE_ACTION
    return payload


def resolve(mapping: Any, event: dict[str, Any]) -> Any:
    """Resolve mapping-kit directives against an event; an unresolved value becomes None."""
    value = _strip_undefined(_resolve(mapping, event))
    return None if value is _UNDEFINED else value


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


def _resolve(mapping: Any, event: Any) -> Any:
    """mapping-kit's resolve(): directives run, containers recurse, raw values stay."""
    if isinstance(mapping, list):
        return [_resolve(item, event) for item in mapping]
    if not isinstance(mapping, dict):
        return mapping
    if _is_directive(mapping):
        name = next(k for k in mapping if k.startswith("@"))
        return _run_directive(name, mapping[name], event)
    return {key: _resolve(value, event) for key, value in mapping.items()}


def _run_directive(name: str, options: Any, event: Any) -> Any:
    """Run one directive."""
    if name == "@path":
        path = _resolve(options, event)
        if not isinstance(path, str):
            raise MappingError(f"@path: expected string, got {_type_name(path)}")
        return _get(event, path.replace("$.", "", 1))
    if name == "@template":
        template = _resolve(options, event)
        if not isinstance(template, str):
            raise MappingError(f"@template: expected string, got {_type_name(template)}")
        return _render(template, event)
    if name == "@literal":
        return _resolve(options, event)
    if name == "@if":
        return _run_if(options, event)
    raise MappingError(f"{name} is not a valid directive, got undefined")


def _run_if(options: Any, event: Any) -> Any:
    """mapping-kit's @if with an "exists" or a "blank" condition."""
    if not isinstance(options, dict):
        raise MappingError('@if requires an object with an "exists" key')
    if not _js_truthy(options.get("exists", _UNDEFINED)) and not _js_truthy(
        options.get("blank", _UNDEFINED)
    ):
        raise MappingError('@if requires an "exists" key or a "blank" key')
    if "exists" in options:
        value = _resolve(options["exists"], event)
        condition = value is not _UNDEFINED and value is not None
    else:
        value = _resolve(options["blank"], event)
        condition = value is not _UNDEFINED and value is not None and not _loosely_empty(value)
    if condition and "then" in options:
        return _resolve(options["then"], event)
    if not condition and _js_truthy(options.get("else", _UNDEFINED)):
        return _resolve(options["else"], event)
    return _UNDEFINED


_PATH_PART = re.compile(r"[^\[.\]]+")


def _get(obj: Any, path: str) -> Any:
    """mapping-kit's get(): dotted and bracketed paths; '' or '.' is the root."""
    if path in ("", "."):
        return obj
    current = obj
    for key in _PATH_PART.findall(path):
        if isinstance(current, dict):
            current = current.get(key, _UNDEFINED)
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return _UNDEFINED
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
        return "" if value is _UNDEFINED or value is None else js_string(value)

    def escaped(match: re.Match[str]) -> str:
        value = _get(event, match.group(1).strip())
        if value is _UNDEFINED or value is None:
            return ""
        if isinstance(value, str):
            return re.sub(r"[&<>\"'`=/]", lambda m: _HTML_ENTITIES[m.group(0)], value)
        return js_string(value)

    return _DOUBLE.sub(escaped, _TRIPLE.sub(raw, template))


# --- after mapping-kit: empties, coercion --------------------------------------------------------


def _remove_empty(value: Any) -> Any:
    """Drop undefined, null and "" at every depth; an empty value itself becomes undefined."""
    if value is _UNDEFINED or value is None or value == "":
        return _UNDEFINED
    if isinstance(value, dict):
        cleaned = {k: _remove_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not _UNDEFINED}
    if isinstance(value, list):
        cleaned_items = [_remove_empty(item) for item in value]
        return [item for item in cleaned_items if item is not _UNDEFINED]
    return value


def _strip_undefined(value: Any) -> Any:
    """mapping-kit's removeUndefined: drop undefined object keys, undefined list items -> None."""
    if isinstance(value, dict):
        return {k: _strip_undefined(v) for k, v in value.items() if v is not _UNDEFINED}
    if isinstance(value, list):
        return [None if item is _UNDEFINED else _strip_undefined(item) for item in value]
    return value


def _coerce_string(value: Any, pointer: str, errors: list[str]) -> Any:
    """Ajv coerceTypes "array" to string: scalars become strings, [x] becomes x."""
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict | list):
        value = value[0]
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return js_string(value)
    errors.append(f"The value at {pointer} must be a string but it was {_article_type(value)}.")
    return value


def _type_name(value: Any) -> str:
    """mapping-kit's realTypeOf() names."""
    if value is _UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _article_type(value: Any) -> str:
    """'an object', 'a string' ... as ajv-human-errors words it."""
    name = _type_name(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value."""
    if value is _UNDEFINED or value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def _loosely_empty(value: Any) -> bool:
    """JavaScript ``value == ''`` (0, false, "", [] and lists that print as "")."""
    if isinstance(value, str):
        return value == ""
    if isinstance(value, bool):
        return value is False
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, list):
        return js_string(value) == ""
    return False


# --- configuration checks ------------------------------------------------------------------------


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
        if not _js_truthy(options.get("exists", _UNDEFINED)) and not _js_truthy(
            options.get("blank", _UNDEFINED)
        ):
            problems.append('@if needs an "exists" or a "blank" key')
        unknown = [k for k in options if k not in ("exists", "blank", "then", "else")]
        if unknown:
            problems.append(f"@if has unknown keys {', '.join(map(repr, unknown))}")
        for key in ("exists", "blank", "then", "else"):
            if key in options:
                _check(options[key], problems)


def _is_unmapped(value: Any) -> bool:
    """A field that can never produce a value (absent, null or "")."""
    return value is _UNDEFINED or value is None or value == ""


def _could_be_object(value: Any) -> bool:
    """Whether a data mapping can resolve to an object (a plain object or a directive)."""
    return isinstance(value, dict) or _is_unmapped(value)


def _missing_field_message(label: str, name: str, multi_accounts: bool) -> str:
    """Why a required field needs a mapping, with an example."""
    examples = {
        "customer": '{"@path": "$.userId"}',
        "action": '{"@path": "$.properties.antavoAction"} or a fixed name like "checkout"',
        "account": '{"@path": "$.properties.antavoAccount"}',
        "data": '{"points": {"@path": "$.properties.points"}}',
    }
    why = "is required when multi-accounts is on" if name == "account" else "is required"
    return f"{label}: field {name!r} {why} but has no mapping; map it, e.g. {examples[name]}."
