"""How `segment-sync logs` prints log rows: an aligned table, JSON or CSV records, one entry."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from segment_sync.logs.browse import COLUMNS, EXTRA_COLUMNS, LIST_COLUMNS
from segment_sync.logs.filters import LogName

RIGHT_ALIGNED = frozenset({"status_code", "response_time_s"})
MAX_WIDTH = {"error": 60, "customer_id": 32}
BODY_PREVIEW_CHARS = 10_000
LIST_PREVIEW_ITEMS = 20
CSV_LIST_SEPARATOR = ";"
BODY_COLUMNS = ("request_body", "response_body")


def rendered(log: LogName, rows: list[dict[str, Any]], output_format: str) -> str:
    """`rows` as a table (`table`), a JSON array (`json`) or CSV with a header (`csv`)."""
    if output_format == "json":
        return json.dumps([as_record(log, row) for row in rows], indent=2, ensure_ascii=False)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=record_keys(log), lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_record(as_record(log, row)) for row in rows)
        return buffer.getvalue()
    return as_table(log, rows)


def record_keys(log: LogName) -> list[str]:
    """The JSON / CSV keys: the manual's columns, the customer list right after `customer_id`,
    then which received event and mapping the row is about (inbound)."""
    keys = [name for name, _ in COLUMNS[log]]
    after = keys.index("customer_id") + 1
    return [*keys[:after], *LIST_COLUMNS[log], *keys[after:], *EXTRA_COLUMNS[log]]


def as_record(log: LogName, row: dict[str, Any]) -> dict[str, Any]:
    """A row as the JSON / CSV contract, timestamps ISO-8601 UTC.

    `customer_id` is the request's one customer (null for a batch of several), `customer_ids`
    every customer it carried.
    """
    record = {}
    for name in record_keys(log):
        value = row[name]
        if name == "timestamp":
            value = iso(value)
        elif name in LIST_COLUMNS[log]:
            value = list(value or [])
        record[name] = value
    return record


def csv_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record with each list joined by `;` into one cell (JSON keeps the exact list)."""
    return {
        name: CSV_LIST_SEPARATOR.join(value) if isinstance(value, list) else value
        for name, value in record.items()
    }


def iso(moment: datetime | str | None) -> str | None:
    """ISO-8601 UTC with microseconds and a `Z`. A time Python cannot hold (before year 1 or
    after 9999: a damaged file) comes from DuckDB as its text, shown as it is."""
    if not isinstance(moment, datetime):
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_table(log: LogName, rows: list[dict[str, Any]]) -> str:
    """An aligned text table with the manual's headers; long cells end in `...`."""
    if not rows:
        return f"No matching {log} requests."
    headers = COLUMNS[log]
    cells = [[cell_text(name, row) for name, _ in headers] for row in rows]
    widths = [
        max(len(title), *(len(line[i]) for line in cells)) for i, (_, title) in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if name in RIGHT_ALIGNED else value.ljust(width)
            for (name, _), value, width in zip(headers, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line([title for _, title in headers]), line(["-" * w for w in widths])]
    out.extend(line(values) for values in cells)
    return "\n".join(out)


def cell_text(name: str, row: dict[str, Any]) -> str:
    """The display text of one table cell."""
    value = row[name]
    if name == "timestamp" and isinstance(value, datetime):  # else DuckDB's text (see `iso`)
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    elif name == "customer_id" and value is None and row.get("customer_ids"):
        ids = row["customer_ids"]
        text = ids[0] if len(ids) == 1 else f"{ids[0]} (+{len(ids) - 1} more)"
    elif value is None:
        text = "-"
    elif name == "response_time_s":
        text = f"{value:.3f}"
    else:
        text = " ".join(str(value).split())
    limit = MAX_WIDTH.get(name)
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def echo_entry(log: LogName, identifier: str, row: dict[str, Any], full: bool) -> None:
    """Print one log row: its columns aligned, then both bodies."""
    direction = "to Segment" if log == "outbound" else "to Antavo"
    click.echo(f"{log} request {identifier} ({direction})")
    fields = [name for name in row if name not in BODY_COLUMNS]
    width = max(len(name) for name in fields)
    for name in fields:
        click.echo(f"  {name.ljust(width)}  {show_value(name, row[name], full)}")
    for name, title in zip(BODY_COLUMNS, ("Request body", "Response body"), strict=True):
        click.echo(f"{title}:")
        click.echo(shown_body(row.get(name), full))


def show_value(name: str, value: Any, full: bool) -> str:
    """One column's value for `show`; long customer lists are shortened unless `full`."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return iso(value) or "-"
    if isinstance(value, list):
        shown = value if full else value[:LIST_PREVIEW_ITEMS]
        text = ", ".join(str(v) for v in shown)
        hidden = len(value) - len(shown)
        return text + (f" (+{hidden:,} more; use --full)" if hidden else "")
    return str(value)


def shown_body(body: str | None, full: bool) -> str:
    """A body pretty-printed if it is JSON, cut at BODY_PREVIEW_CHARS unless `full`."""
    if body is None or body == "":
        return "  (none)"
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body
    if full or len(text) <= BODY_PREVIEW_CHARS:
        return text
    rest = len(text[BODY_PREVIEW_CHARS:].encode())
    return f"{text[:BODY_PREVIEW_CHARS]}\n... ({rest:,} more bytes; use --full)"
