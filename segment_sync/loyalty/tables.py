"""The loyalty store's two append-only tables."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

loyalty_events = sa.Table(
    "loyalty_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("external_customer_id", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, server_default="loyalty"),
    sa.Index("ix_loyalty_events_occurred_at", "occurred_at"),
    sa.Index("ix_loyalty_events_external_customer_id", "external_customer_id"),
)

profile_changes = sa.Table(
    "profile_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("external_customer_id", sa.Text),
    sa.Column("attributes", sa.Text, nullable=False, server_default="{}"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, server_default="loyalty"),
    sa.Index("ix_profile_changes_external_customer_id", "external_customer_id"),
    # Routing per region reads each customer's profile changes (attribute_history).
    sa.Index("ix_profile_changes_customer_id", "customer_id"),
)
