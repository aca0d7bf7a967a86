"""A URL password holding a raw delimiter ('?', '#', '/') never shows, not even the part of it a
parser takes for the password, host or port: the real `segment-sync` command, in a process.

Each password is `PWHEAD...<delimiter>PWTAIL...`: either marker in any output is a leak.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from segment_sync_tests.inbound.test_inbound_recovery import CHECKOUT
from segment_sync_tests.url_passwords import log_rows

MARKERS = ("PWHEAD", "PWTAIL")


def segment_sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segment_sync.cli", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _leaks(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


@pytest.mark.parametrize("delimiter", ["?", "#", "/"])
@pytest.mark.parametrize(
    ("section", "key"),
    [("outbound", "base_url"), ("inbound", "base_url"), ("alerts", "ui_base_url")],
)
def test_a_refused_http_url_names_its_setting_without_any_part_of_its_password(
    write_settings, section, key, delimiter
):
    url = f"http://user:PWHEADsecret{delimiter}PWTAILrest@127.0.0.1:8701"
    path = write_settings(**{section: {key: url}})

    done = segment_sync("settings", "check", "--settings", str(path))

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"{section}.{key}: must be an http(s) URL" in output, output
    assert "percent-encode" in output and "Traceback" not in output, output
    assert not _leaks(output), output


@pytest.mark.parametrize(
    "url",
    [
        "redis://u:PWHEADsecret/PWTAILrest@127.0.0.1:6379/0",
        "redis://u:PWHEADsecret?PWTAILrest@127.0.0.1:6379/0",
        "redis://u:PWHEADsecret#PWTAILrest@127.0.0.1:6379/0",
        "redis://u:PWHEADsecretPWTAILrest@127.0.0.1:notaport/0",
    ],
)
def test_an_unreadable_rate_limiter_url_fails_the_run_in_one_line_without_its_password(
    write_settings, tmp_path, monkeypatch, url
):
    monkeypatch.setenv("ANTAVO_RATE_LIMIT_URL", url)
    path = write_settings(
        inbound={
            "buffer_url": f"sqlite:///{tmp_path}/inbound.db",
            "rate_limiter": "redis",
            "rate_limiter_url_env": "ANTAVO_RATE_LIMIT_URL",
            "mappings": [CHECKOUT],
        }
    )

    done = segment_sync("run", "inbound", "--settings", str(path))

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    # The settings' own form of an error: "run ... FAILED: settings: 1 problem(s):", then the
    # one problem naming the setting, the variable and the fix.
    failed = output[output.index("FAILED") :].splitlines()
    assert len(failed) == 2 and failed[0].endswith("1 problem(s):"), output
    assert "inbound.rate_limiter_url_env: the value of ANTAVO_RATE_LIMIT_URL" in failed[1], output
    assert "export ANTAVO_RATE_LIMIT_URL" in failed[1], output
    assert not _leaks(output), output
    rows = log_rows(tmp_path / "logs")
    errors = [row for row in rows if "ANTAVO_RATE_LIMIT_URL" in repr(row)]
    assert errors, rows  # the sync_runs row says why
    assert not _leaks(repr(rows)), rows
