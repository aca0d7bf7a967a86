"""Inbound external customer IDs: the mapped customer is the external ID, resolved before sending."""

from __future__ import annotations

from segment_sync.inbound.customer_ids import external_ids, to_antavo_customers
from segment_sync.inbound.mapping.antavo_event import MappingOutcome

ORDER = MappingOutcome("Orders", {"customer": "ext-7", "action": "checkout"}, None)
GHOST = MappingOutcome("Orders", {"customer": "ext-404", "action": "checkout"}, None)
BROKEN = MappingOutcome("Orders", None, "The root value is missing the required field 'customer'.")


def test_the_external_ids_asked_for_are_the_customers_of_successful_outcomes():
    assert external_ids([ORDER, GHOST, BROKEN]) == {"ext-7", "ext-404"}


def test_a_known_external_id_becomes_the_antavo_customer_and_the_rest_is_kept():
    (resolved,) = to_antavo_customers([ORDER], {"ext-7": "c-7"})
    assert resolved.antavo_event == {"customer": "c-7", "action": "checkout"}
    assert resolved.error is None and ORDER.antavo_event["customer"] == "ext-7"


def test_an_unknown_external_id_fails_naming_the_id_and_the_setting():
    (failed,) = to_antavo_customers([GHOST], {"ext-7": "c-7"})
    assert "external_customer_id 'ext-404'" in failed.error
    assert "general.customer_id_mapping" in failed.error


def test_an_outcome_that_already_failed_is_left_as_it_was():
    assert to_antavo_customers([BROKEN], {}) == [BROKEN]
