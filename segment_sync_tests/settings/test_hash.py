"""The settings hash: the same for the same effective settings, another for any changed value,
and never fed a secret (variable values, URL passwords)."""

from __future__ import annotations

import re

import yaml

from segment_sync.settings import load_settings
from segment_sync.settings.hash import hash_input, settings_hash
from segment_sync_tests.conftest import WRITE_KEY

DB_PASSWORD = "s3cret-Pa55word"


def test_the_hash_is_sixteen_hex_digits_and_stable(write_settings):
    path = write_settings()
    first = settings_hash(load_settings(path))
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert settings_hash(load_settings(path)) == first


def test_comments_key_order_and_spelled_out_defaults_do_not_change_it(write_settings, tmp_path):
    path = write_settings()
    before = settings_hash(load_settings(path))
    data = yaml.safe_load(path.read_text())
    data["outbound"]["region"] = "us"  # the default, now written out
    reordered = dict(reversed(list(data.items())))
    path.write_text("# a comment\n" + yaml.safe_dump(reordered, sort_keys=False))
    assert settings_hash(load_settings(path)) == before


def test_a_changed_threshold_changes_it(write_settings):
    before = settings_hash(load_settings(write_settings()))
    path = write_settings(maintenance={"checks": {"outbound_error_rate_max": 0.2}})
    assert settings_hash(load_settings(path)) != before


def test_a_new_write_key_value_keeps_it_but_another_variable_name_changes_it(
    write_settings, monkeypatch
):
    path = write_settings()
    before = settings_hash(load_settings(path))
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "a-rotated-write-key-000000")
    assert settings_hash(load_settings(path)) == before
    monkeypatch.setenv("OTHER_WRITE_KEY", WRITE_KEY)
    renamed = write_settings(outbound={"write_key_env": "OTHER_WRITE_KEY"})
    assert settings_hash(load_settings(renamed)) != before


def test_a_url_password_never_enters_the_input_and_a_new_one_keeps_the_hash(write_settings):
    url = "postgresql://sync:{}@db.internal:5432/loyalty"
    settings = load_settings(write_settings(loyalty_store={"url": url.format(DB_PASSWORD)}))
    text = hash_input(settings)
    assert DB_PASSWORD not in text and "sync:[REDACTED]@db.internal" in text
    rotated = load_settings(write_settings(loyalty_store={"url": url.format("other-pass-99")}))
    assert settings_hash(rotated) == settings_hash(settings)


def test_a_secret_value_pasted_into_another_setting_is_masked_before_hashing(write_settings):
    orders = {"name": "Orders", "action": "loyalty_event",
              "fields": {"action": {"@literal": WRITE_KEY}}}  # fmt: skip
    settings = load_settings(write_settings(inbound={"mappings": [orders]}))
    assert WRITE_KEY not in hash_input(settings)
