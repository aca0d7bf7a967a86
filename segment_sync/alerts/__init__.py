"""Alerts that reach a person: the message text, its delivery to a webhook, and the cursor."""
