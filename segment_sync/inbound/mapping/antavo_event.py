"""From a matching mapping to the Antavo request, as the destination builds it after mapping-kit.

Turning the resolved fields into the Antavo request follows what the destination does after
mapping-kit: empty values (missing, ``null``, ``""``) are removed at every depth, string fields are
coerced to strings the way Ajv's ``coerceTypes: "array"`` does (``3612345678`` becomes
``"3612345678"``), and a missing required field fails with Ajv's human-readable message, e.g.
``The root value is missing the required field 'customer'.``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_sync.inbound.mapping.actions import ANTAVO_PROFILE_ACTION, PROFILE_UPDATE, Mapping
from segment_sync.inbound.mapping.evaluator import MappingError
from segment_sync.inbound.mapping.js_values import UNDEFINED, article_type, js_string, type_name


@dataclass(slots=True)  # one per event mapped: a frozen __init__ costs several times as much
class MappingOutcome:
    """What one matching mapping made of an event: an Antavo event, or the error why not."""

    mapping_name: str
    antavo_event: dict[str, Any] | None
    error: str | None


def apply_mappings(
    mappings: list[Mapping], event: dict[str, Any], multi_accounts: bool
) -> list[MappingOutcome]:
    """One outcome per enabled mapping whose trigger matches; [] means no mapping matched."""
    outcomes: list[MappingOutcome] = []
    for mapping in mappings:
        if not mapping.enabled or not mapping.matches(event):
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
        raise MappingError(f"data must be an object, got {type_name(event)}")
    payload: dict[str, Any] = {}
    for name, resolve in mapping.resolvers:  # unknown fields are dropped (Ajv removeAdditional)
        value = resolve(event)
        if type(value) is str:  # most fields: nothing to walk, nothing to coerce
            if value:
                payload[name] = value
        elif (value := _remove_empty(value)) is not UNDEFINED:
            payload[name] = value

    errors: list[str] = []
    for name in (spec.required + ("account",)) if multi_accounts else spec.required:
        if name not in payload:
            errors.append(f"The root value is missing the required field '{name}'.")
    for name in spec.string_fields:
        if name in payload and type(payload[name]) is not str:
            payload[name] = _coerce_string(payload[name], f"/{name}", errors)
    if "data" in payload:
        data = payload["data"]
        if not isinstance(data, dict):
            errors.append(f"The value at /data must be an object but it was {article_type(data)}.")
        else:
            for name in spec.data_string_fields:
                if name in data:
                    data[name] = _coerce_string(data[name], f"/data/{name}", errors)
    if errors:
        raise MappingError(" ".join(errors))

    if spec.key == PROFILE_UPDATE:
        payload["action"] = ANTAVO_PROFILE_ACTION
    return payload


def _remove_empty(value: Any) -> Any:
    """Drop undefined, null and "" at every depth; an empty value itself becomes undefined."""
    kind = type(value)  # JSON's own types first: this runs for every field of every event
    if kind is str:
        return UNDEFINED if value == "" else value
    if kind is int or kind is float or kind is bool:
        return value
    # A plain dict is not compared with "" (a dict == str falls back twice before saying no).
    if kind is not dict and (value is UNDEFINED or value is None or value == ""):
        return UNDEFINED
    if kind is dict or isinstance(value, dict):  # one pass, numbers and text kept at once
        kept = {}
        for k, v in value.items():
            member = type(v)
            if member is str:
                if v != "":
                    kept[k] = v
            elif member is int or member is float or member is bool:
                kept[k] = v
            elif (c := _remove_empty(v)) is not UNDEFINED:
                kept[k] = c
        return kept
    if isinstance(value, list):
        return [c for item in value if (c := _remove_empty(item)) is not UNDEFINED]
    return value


def _coerce_string(value: Any, pointer: str, errors: list[str]) -> Any:
    """Ajv coerceTypes "array" to string: scalars become strings, [x] becomes x."""
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict | list):
        value = value[0]
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return js_string(value)
    errors.append(f"The value at {pointer} must be a string but it was {article_type(value)}.")
    return value
