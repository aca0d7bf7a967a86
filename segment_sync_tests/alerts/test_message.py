"""The alert text: what failed, why, the run's link; shortened, escaped, never a secret."""

from __future__ import annotations

from segment_sync.alerts.message import MAX_REASON_CHARS, AlertKind, Failure, alert_text
from segment_sync.redaction import Redactor

SECRET = "write-key-0123456789"


def _text(reason: str, kind: AlertKind = AlertKind.RUN_FAILURE, **kw) -> str:
    failure = Failure(kind, "outbound_sync_job", reason, "run-42", **kw)
    return alert_text(failure, "http://dagster.example:3000/", Redactor([SECRET]))


def test_the_text_names_the_job_the_reason_and_links_the_run():
    text = _text("sync_outbound: HTTP 503: Segment server error")
    assert text.splitlines() == [
        "[segment-sync] Sync run failed: outbound_sync_job",
        "Why: sync_outbound: HTTP 503: Segment server error",
        "Run: http://dagster.example:3000/runs/run-42",
    ]


def test_a_check_failure_says_check():
    assert _text("10 of 100", AlertKind.CHECK_FAILURE).startswith("[segment-sync] Check failed: ")


def test_a_long_reason_is_cut_to_one_line_with_an_ellipsis():
    why = _text("line one\n  line two " + "x" * 5000).splitlines()[1]
    assert why.startswith("Why: line one line two x") and why.endswith("…")
    assert len(why) == len("Why: ") + MAX_REASON_CHARS


def test_a_secret_cut_by_the_limit_leaves_no_part_of_it():
    reason = "x" * (MAX_REASON_CHARS - 8) + SECRET
    assert SECRET[:6] not in _text(reason)


def test_secrets_and_url_passwords_are_redacted():
    text = _text(f"key {SECRET} refused by postgresql://u:hunter22@db/x")
    assert SECRET not in text and "hunter22" not in text and "[REDACTED]" in text


def test_slack_markup_characters_are_escaped():
    assert "Why: customer &lt;id&gt; &amp; more" in _text("customer <id> & more")


def test_a_run_dagster_will_retry_says_so():
    assert "(Dagster will retry the run)" in _text("HTTP 503", will_retry=True)


def test_an_expected_failure_shows_its_description_without_the_class_name():
    text = _text("sync: dagster._core.definitions.events.Failure: 1 stayed pending")
    assert "Why: sync: 1 stayed pending" in text


def test_a_password_in_the_ui_base_url_is_masked_in_the_link():
    failure = Failure(AlertKind.RUN_FAILURE, "job", "boom", "run-1")
    text = alert_text(failure, "https://ops:hunter22@dagster.example", Redactor())
    assert "Run: https://ops:[REDACTED]@dagster.example/runs/run-1" in text
