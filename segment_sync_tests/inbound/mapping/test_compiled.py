"""A compiled field mapping resolves every event exactly as `evaluate` does, errors included."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.inbound.mapping.evaluator import compiled, evaluate

KEYS = st.sampled_from(["userId", "properties", "points", "a", "0", "1", "name", "traits"])
PATHS = st.one_of(
    st.sampled_from(["$.", ".", "", "$.userId", "properties.points", "a[0].name", "$.a.1", "x.y"]),
    st.lists(KEYS, min_size=1, max_size=3).map(".".join),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def _mappings(inner: st.SearchStrategy) -> st.SearchStrategy:
    directive = st.one_of(
        st.builds(lambda p: {"@path": p}, st.one_of(PATHS, inner)),
        st.builds(lambda t: {"@template": t}, st.sampled_from(["{{userId}}", "a {{{a.0}}}", 3])),
        st.builds(lambda v: {"@literal": v}, inner),
        st.builds(
            lambda k, c, t, e: {"@if": {k: c, "then": t, "else": e}},
            st.sampled_from(["exists", "blank", "other"]),
            inner,
            inner,
            inner,
        ),
        st.builds(lambda v: {"@path": v, "_metadata": {}}, PATHS),
        st.builds(lambda v: {"@unknown": v}, inner),
    )
    return st.one_of(
        directive, st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)
    )


MAPPINGS = st.recursive(SCALARS, _mappings, max_leaves=10)
EVENTS = st.dictionaries(KEYS, VALUES, max_size=5)


def _outcome(resolve: Any) -> tuple[str, Any]:
    try:
        return "value", resolve()
    except Exception as exc:  # noqa: BLE001 - the same error is the point
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(MAPPINGS, st.lists(EVENTS, min_size=1, max_size=3))
def test_a_compiled_mapping_resolves_each_event_as_evaluate_does(
    mapping: Any, events: list
) -> None:
    resolve = compiled(mapping)
    for event in events:
        assert _outcome(lambda e=event: resolve(e)) == _outcome(
            lambda e=event: evaluate(mapping, e)
        )


def test_a_compiled_mapping_builds_new_containers_for_each_event() -> None:
    resolve = compiled({"data": {"points": {"@path": "$.p"}}, "tags": ["a"]})
    first, second = resolve({"p": 1}), resolve({"p": 2})
    assert first == {"data": {"points": 1}, "tags": ["a"]}
    assert second == {"data": {"points": 2}, "tags": ["a"]}
    assert first["data"] is not second["data"] and first["tags"] is not second["tags"]


def test_a_compiled_path_reads_lists_and_non_objects_as_evaluate_does() -> None:
    """Paths of one or two keys read objects at once; a list (or no object) on the way walks."""
    events = [
        {"a": ["x", "y"], "userId": "u"},
        {"a": {"1": "one"}},
        {"a": "text"},
        ["first", "second"],
        [["nested", "inner"]],
        "plain",
    ]
    for path in ("$.a.1", "$.0", "$.0.1", "$.userId", "$.a", "$.1"):
        resolve = compiled({"@path": path})
        for event in events:
            assert _outcome(lambda e=event, r=resolve: r(e)) == _outcome(
                lambda e=event, p=path: evaluate({"@path": p}, e)
            ), (path, event)
    assert compiled({"@path": "$.a.1"})({"a": ["x", "y"]}) == "y"
    assert compiled({"@path": "$.1"})(["x", "y"]) == "y"
