"""The outbound requests' figures per day and type: daily_summary's SQL and its fingerprint.

A summary file (summaries.py) holds these figures for one data file. Its name carries the
fingerprint of the SQL and the schema that made it (layout.SUMMARY_SUFFIX), so a summary made by
other code (an upgrade that changes how requests or errors are counted) is never read as this
code's: its day is aggregated from its rows until maintenance writes the summary again.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

REQUEST_FAILED = "error IS NOT NULL OR status_code IS NULL OR status_code >= 400"
# p50 and p95 from one exact quantile over one collection of the values: two quantile_cont
# calls collect and sort every group's values twice; the list form returns the same numbers.
QUANTILES = "quantile_cont(response_time_s, [0.5, 0.95])"


def requests_sql(source: str, where: str = "TRUE") -> str:
    """Outbound requests, errors and [p50, p95] response times per day and type of `source`."""
    return f"""SELECT "date" AS day, event_type AS type,
        count(*) AS requests,
        count(*) FILTER (WHERE {REQUEST_FAILED}) AS errors,
        {QUANTILES} AS response_times
    FROM {source}
    WHERE {where}
    GROUP BY ALL"""


def figures_fingerprint(summary_schema: pa.Schema, sql: str | None = None) -> str:
    """12 hex digits naming the SQL (`requests_sql` unless given) and the schema of a summary."""
    text = (sql if sql is not None else requests_sql("source")) + "\n" + summary_schema.to_string()
    return hashlib.sha256(text.encode()).hexdigest()[:12]
