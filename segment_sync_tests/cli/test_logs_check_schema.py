"""A log file that reads whole on its own but no longer has its table's column types (a flipped
footer byte turned `customer_ids` from a list into a struct) fails the listing; `logs check`
should find it so that `--quarantine` can move it aside."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from segment_sync_tests.cli.test_logs_check import logs_with_files, one_line_naming, run


def lose_the_list_annotation(path) -> None:
    """What flipping byte 1431 of the small outbound file did (found by a one-byte sweep)."""
    table = pq.read_table(path)
    index = table.schema.get_field_index("customer_ids")
    ids = table.column(index)
    as_struct = pa.StructArray.from_arrays([ids.combine_chunks()], names=["list"])
    pq.write_table(table.set_column(index, "customer_ids", as_struct), path)


def test_a_log_file_with_its_column_types_lost_is_named_and_found_by_check(tmp_path):
    settings, _, files = logs_with_files(tmp_path)
    lose_the_list_annotation(files[0])

    listing = run(settings, "outbound")
    check = run(settings, "check")

    assert listing.exit_code == 0 or one_line_naming(listing, files[0]), listing.exc_info
    assert check.exit_code == 1 and f"{files[0]}:" in check.output
