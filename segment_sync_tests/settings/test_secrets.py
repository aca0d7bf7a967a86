"""What the settings file holds is never echoed when it may be a secret: a value pasted where an
environment variable's NAME belongs, or the line of a YAML syntax error."""

from __future__ import annotations

import string

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_sync.cli import main
from segment_sync.settings import Settings, SettingsError, load_settings, parse_settings


def _env_keys(model: type = Settings, prefix: str = "") -> list[str]:
    """Every `*_env` key of the settings, found by name."""
    keys = []
    for name, field in model.model_fields.items():
        nested = field.annotation if isinstance(field.annotation, type) else None
        if nested is not None and hasattr(nested, "model_fields"):
            keys += _env_keys(nested, f"{prefix}{name}.")
        elif name.endswith("_env"):
            keys.append(f"{prefix}{name}")
    return keys


ENV_KEYS = _env_keys()
_ALNUM = string.ascii_letters + string.digits
# What gets pasted instead of a name: a key (letters and digits, 20 to 64, any case, upper case
# only too), a token with '-' or '.', a URL, text with spaces or unicode.
PASTED = st.one_of(
    st.text(_ALNUM, min_size=20, max_size=64),
    st.text(string.ascii_uppercase, min_size=20, max_size=64),
    st.text(_ALNUM + "-._/+=:@", min_size=8, max_size=64).filter(
        lambda s: any(c in s for c in "-./+=:@")
    ),
    st.text(min_size=10, max_size=40).filter(lambda s: not s.isascii() or " " in s),
    st.text(string.digits + string.ascii_uppercase, min_size=9, max_size=30).map(lambda s: f"9{s}"),
).filter(lambda s: len(set(s)) >= 4)  # distinct enough never to appear in the message by chance
NAME_WORD = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=15)
NAMES = st.lists(NAME_WORD, min_size=1, max_size=4).map("_".join).filter(lambda s: s[0].isalpha())


def _with(key: str, value: object) -> dict:
    section, name = key.split(".")
    return {section: {name: value}}


def _settings_check(data: dict, tmp_path_factory) -> str:
    file = tmp_path_factory.mktemp("env") / "settings.yaml"
    file.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = CliRunner().invoke(main, ["settings", "check", "--settings", str(file)])
    return result.output


def test_every_env_key_is_checked():
    assert len(ENV_KEYS) >= 9 and "outbound.write_key_env" in ENV_KEYS


@settings(max_examples=150)
@given(key=st.sampled_from(ENV_KEYS), pasted=PASTED)
def test_a_value_that_cannot_be_a_variable_name_is_refused_without_echoing_it(
    key, pasted, tmp_path_factory
):
    output = _settings_check(_with(key, pasted), tmp_path_factory)
    assert f"{key}: this looks like the secret itself" in output, output
    assert "A name is UPPER_SNAKE_CASE: A-Z, 0-9 and '_'" in output  # what a name looks like
    assert pasted not in output, output


@settings(max_examples=60)
@given(key=st.sampled_from(ENV_KEYS), name=NAMES)
def test_a_variable_name_is_accepted_and_named(key, name):
    loaded = parse_settings(_with(key, name))
    section, field = key.split(".")
    assert getattr(getattr(loaded, section), field) == name


# ---------------------------------------------------------------------------------------------
# YAML syntax errors
# ---------------------------------------------------------------------------------------------

SECRET = st.text(_ALNUM, min_size=12, max_size=24).map(lambda s: f"S3cr{s}")
# A line breaking the YAML, holding the secret: each is a syntax error PyYAML quotes in its
# message with the line's text (or the secret as a tag, an anchor or an alias).
BROKEN_LINES = [
    "  url: 'postgresql://u:{s}@db/x",  # an unclosed quote
    "  url: postgresql://u:{s}@db/x: [",  # an unclosed flow sequence
    '  url: "postgresql://u:{s}\\q@db/x"',  # an unknown escape
    "\turl: postgresql://u:{s}@db/x",  # a tab
    "  url: !{s} postgresql://db/x",  # an unknown tag
    "  url: *{s}",  # an undefined alias
    "  url: postgresql://u:{s}@db/x\n url2: {s}",  # a bad indent
    "  url: {{{s}",  # an unclosed flow mapping
    "  url: postgresql://u:{s}@db/x\n- {s}",  # a list where a mapping goes on
]


@settings(max_examples=60)
@given(secret=SECRET, line=st.sampled_from(BROKEN_LINES), before=st.integers(0, 5))
def test_a_yaml_syntax_error_gives_line_and_column_never_the_text(
    secret, line, before, tmp_path_factory
):
    file = tmp_path_factory.mktemp("yaml") / "settings.yaml"
    padding = "".join(f"# comment {i}\n" for i in range(before))
    file.write_text(f"{padding}loyalty_store:\n{line.format(s=secret)}\noutbound: {{}}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(file)
    message = str(raised.value)
    assert f"{file}: not valid YAML at line " in message and ", column " in message, message
    assert secret not in message and secret[:8] not in message and secret[-8:] not in message
