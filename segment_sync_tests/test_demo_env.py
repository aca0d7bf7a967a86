"""`segment-sync demo env`'s lines, as pure functions: only the stand-ins' demo secrets are ever
printed, and nothing when the settings send anywhere but the demo's stand-ins."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_sync.demo_env import (
    DEMO_SECRETS,
    DemoEnvRefused,
    DemoExports,
    demo_secrets_env,
    export_lines,
)
from segment_sync.settings import parse_settings

SEGMENT_STANDIN = "http://127.0.0.1:8701"
ANTAVO_STANDIN = "http://127.0.0.1:8702"
DEMO_SETTINGS = parse_settings(
    {"outbound": {"base_url": SEGMENT_STANDIN}, "inbound": {"base_url": ANTAVO_STANDIN}}
)

# What a shell may hold in each of the demo's variables: unset, empty, the demo value, or any text.
shell_values = st.one_of(
    st.none(), st.just(""), st.sampled_from(sorted(DEMO_SECRETS.values())), st.text(min_size=1)
)


def _exports(environ: dict[str, str]) -> DemoExports:
    _, standin, own = demo_secrets_env(environ)
    return DemoExports(
        settings_file="/demo/data/segment_sync.yaml",
        segment_standin=SEGMENT_STANDIN,
        antavo_standin=ANTAVO_STANDIN,
        dagster_home="/demo",
        standin_secrets=standin,
        own_secrets=own,
    )


def _exported(lines: list[str]) -> dict[str, str]:
    pairs = [shlex.split(line.removeprefix("export "))[0] for line in lines if line[0] != "#"]
    return dict(pair.split("=", 1) for pair in pairs)


@given(st.fixed_dictionaries({name: shell_values for name in DEMO_SECRETS}))
def test_only_the_standins_demo_secrets_are_ever_exported(shell) -> None:
    environ = {name: value for name, value in shell.items() if value is not None}
    env, _, _ = demo_secrets_env(environ)
    lines = export_lines("123", _exports(environ), DEMO_SETTINGS)
    exported = _exported(lines)
    paths = {"/demo/data/segment_sync.yaml", "/demo"}
    assert set(exported.values()) <= set(DEMO_SECRETS.values()) | paths
    for name, demo_value in DEMO_SECRETS.items():
        if env[name] == demo_value:  # the demo ran with the stand-ins' value: printed
            assert exported[name] == demo_value
        else:  # a value of the demo's own shell: named in a comment, never printed
            assert name not in exported
            assert f"# {name}: not printed" in "\n".join(lines)


@pytest.mark.parametrize(
    ("section", "url"),
    [("outbound", None), ("outbound", "https://proxy.example.com"), ("inbound", None),
     ("inbound", "http://127.0.0.1:9999")],
)  # fmt: skip
def test_settings_that_send_beyond_the_standins_export_nothing(section, url) -> None:
    other = {"outbound": {"base_url": SEGMENT_STANDIN}, "inbound": {"base_url": ANTAVO_STANDIN}}
    other[section]["base_url"] = url
    with pytest.raises(DemoEnvRefused, match=f"sends {section} to .*not to the demo's"):
        export_lines("123", _exports({}), parse_settings(other))


def test_the_exports_name_the_settings_file_and_dagster_home() -> None:
    exported = _exported(export_lines("123", _exports({}), DEMO_SETTINGS))
    assert exported["SEGMENT_SYNC_SETTINGS"] == "/demo/data/segment_sync.yaml"
    assert exported["DAGSTER_HOME"] == "/demo"
