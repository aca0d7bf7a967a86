"""The Antavo (Actions) destination's two actions: their fields, defaults and required fields.

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
from collections.abc import Callable
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from segment_sync.inbound.mapping.evaluator import compiled, directive_problems
from segment_sync.inbound.mapping.js_values import UNDEFINED
from segment_sync.inbound.mapping.trigger_errors import TriggerSyntaxError
from segment_sync.inbound.mapping.triggers import parse_trigger, trigger_matcher

LOYALTY_EVENT = "loyalty_event"
PROFILE_UPDATE = "profile_update"
ANTAVO_PROFILE_ACTION = "profile"


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

    @cached_property
    def compiled_fields(self) -> dict[str, Callable[[Any], Any]]:
        """merged_fields as evaluators (evaluator.compiled): `evaluate` of each, made once."""
        return {name: compiled(value) for name, value in self.merged_fields.items()}

    @cached_property
    def resolvers(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        """(field, its evaluator) of the action's fields in the action's order: the fields an
        Antavo event can have (unknown fields are dropped, as Ajv's removeAdditional does)."""
        spec, fields = self.spec, self.compiled_fields
        return tuple((name, fields[name]) for name in spec.fields if name in fields) if spec else ()

    @cached_property
    def matches(self) -> Callable[[Any], bool]:
        """Whether an event matches this mapping's trigger (triggers.trigger_matcher), made once."""
        return trigger_matcher(self.trigger)

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
            if _is_unmapped(fields.get(name, UNDEFINED)):
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


def profile_updates_mapping() -> Mapping:
    """Segment's "Profile updates" action at its default trigger and fields.

    Segment ships no preset mappings, and neither do we: this is active only when listed.
    """
    spec = ACTIONS[PROFILE_UPDATE]
    return Mapping(name=spec.title, action=PROFILE_UPDATE, trigger=spec.default_trigger)


def _is_unmapped(value: Any) -> bool:
    """A field that can never produce a value (absent, null or "")."""
    return value is UNDEFINED or value is None or value == ""


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
