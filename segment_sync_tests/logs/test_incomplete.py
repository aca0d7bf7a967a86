"""What a table that could not be maintained says (logs/incomplete.py): the reason a person acts
on, and for an error nobody foresaw, its traceback somewhere."""

from __future__ import annotations

import logging

import pytest

from segment_sync.logs.incomplete import MaintenanceIncomplete, describe, each_table
from segment_sync.logs.maintenance import TableMaintenance
from segment_sync.logs.s3_lease import LeaseLost
from segment_sync.logs.schema import TABLES


def test_a_lost_lease_is_told_with_its_reason() -> None:
    lost = LeaseLost(
        "outbound_log: the maintenance lease expired and was taken by another maintainer"
    )

    assert "taken by another maintainer" in describe(lost)


def test_an_error_nobody_foresaw_keeps_its_traceback_in_the_log(caplog) -> None:
    first = next(iter(TABLES))

    def maintain(table: str, moved: list) -> TableMaintenance:
        if table == first:
            {"a": 1}["b"]  # a programming error, as a future refactoring may bring
        return TableMaintenance(table, 0, 0, 0, 0)

    with caplog.at_level(logging.WARNING), pytest.raises(MaintenanceIncomplete) as raised:
        each_table(maintain)

    assert list(raised.value.failures) == [first]
    # The run's message says only "KeyError"; where it came from must be in the log.
    assert "KeyError" in caplog.text and ", in maintain" in caplog.text, caplog.text
