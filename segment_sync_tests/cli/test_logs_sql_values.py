"""`logs sql` shows what DuckDB can compute but Python cannot hold as one line, not a traceback."""

from __future__ import annotations

import pytest

from segment_sync.cli.logs_sql import prompt_loop
from segment_sync.logs.read_only import open_read_only
from segment_sync_tests.cli.test_logs_check import logs_with_files, sql

TOO_LONG = [
    "SELECT INTERVAL '2147483647 days' AS i",  # more days than a timedelta holds
    "SELECT INTERVAL 100000000 YEAR AS i",
]


@pytest.mark.parametrize("query", TOO_LONG)
def test_an_interval_python_cannot_hold_is_one_line_not_a_traceback(tmp_path, query):
    settings, _, _ = logs_with_files(tmp_path)

    result = sql(settings, query)

    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    (line,) = result.output.strip().splitlines()
    assert "::VARCHAR" in line


def test_the_prompt_goes_on_after_a_value_python_cannot_hold(tmp_path, monkeypatch, capsys):
    _, logs_dir, _ = logs_with_files(tmp_path)
    typed = iter([f"{TOO_LONG[0]};", "SELECT 41 + 1 AS answer;"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    prompt_loop(open_read_only(logs_dir), "csv", None, logs_dir=logs_dir)

    assert "42" in capsys.readouterr().out
