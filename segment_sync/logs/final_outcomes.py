"""Each outbound message once, by its final outcome: the one both the check and the views count."""

from __future__ import annotations

# A message has one row per attempt; its final outcome is its latest attempt's, so a message
# that failed during an outage and was delivered on a later run counts once, as delivered.
# Skipped messages were never attempts. `date` and `event_type` are the latest attempt's.
_SQL = """
    SELECT message_id, arg_max(outcome, timestamp) AS outcome,
           arg_max(event_type, timestamp) AS event_type, arg_max("date", timestamp) AS "date"
    FROM outbound_messages
    WHERE outcome IN ('delivered', 'failed', 'pending') AND ({where})
    GROUP BY message_id"""


def final_outcomes_sql(where: str = "true") -> str:
    """A subquery of one row per outbound message with an attempt matching `where`."""
    return _SQL.format(where=where)
