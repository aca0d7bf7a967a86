"""A `sqlite:///` setting whose folder cannot be created (it runs through a file, or lies on a
read-only disk) is a settings error naming the key and the fix, for every command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segment_sync.cli import main

KEYS = {
    "loyalty_store.url": ("loyalty_store", "url"),
    "outbound.state_url": ("outbound", "state_url"),
    "inbound.buffer_url": ("inbound", "buffer_url"),
}
COMMANDS = [["settings", "check"], ["run", "outbound"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("fault", ["through a file", "read-only"])
def test_an_impossible_sqlite_path_names_the_setting_and_the_fix(
    write_settings, tmp_path, read_only_dir, command, key, fault
):
    if fault == "through a file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        url, reason = f"sqlite:///{tmp_path}/notes.txt/sub/x.db", "notes.txt is a file"
    else:
        url, reason = f"sqlite:///{read_only_dir}/sub/x.db", f"{read_only_dir} is read-only"
    section, field = KEYS[key]
    path = write_settings(**{section: {field: url}})

    result = CliRunner().invoke(main, [*command, "--settings", str(path)])

    assert result.exit_code == 1  # today: settings check passes, run outbound a traceback
    assert result.exc_info[0] is SystemExit, result.exc_info
    [line] = [line for line in result.output.splitlines() if line.startswith("  - ")]
    assert line.startswith(f"  - {key}: ") and reason in line
    assert "point it at a file in a folder this process can write" in line
