"""`run outbound` reports a failure as a failure: exit code, summary, reasons, sync_runs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segment_sync import factory
from segment_sync.cli import main
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent, Stream
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound.report import classify
from segment_sync.outbound.results import OutboundFailed
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import WRITE_KEY
from segment_sync_tests.odd_answers import answering
from segment_sync_tests.outbound.syncs import outbound_sync


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def seed_events(path, with_external: int, without_external: int) -> None:
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events(
        [NewEvent(f"c-{i}", "point_add", {"points": i}, f"ext-{i}") for i in range(with_external)]
        + [NewEvent(f"n-{i}", "point_add", {"points": i}) for i in range(without_external)]
    )


def sync_runs(path) -> list[tuple]:
    with connect(load_settings(path).logs.dir) as con:
        return con.execute(
            "SELECT job, status, messages_sent, messages_failed, error FROM sync_runs"
        ).fetchall()


def test_customers_without_the_mapped_id_fail_the_run_with_count_and_reason(
    write_settings, segment_standin
):
    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        outbound={"base_url": segment_standin.url},
    )
    seed_events(path, with_external=20, without_external=37)
    result = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert result.exit_code == 1, result.output
    assert "37 message(s) failed, 0 stayed pending (sent 20" in result.output
    assert "37 x customer <id> has no external_customer_id" in result.output
    assert "FAILED" in result.output and "succeeded" not in result.output
    [(job, status, sent, failed, error)] = sync_runs(path)
    assert (job, status, sent, failed) == ("outbound_sync_job", "failure", 20, 37)
    assert "permanent" in error and "external_customer_id" in error
    assert len(segment_standin.accepted_message_ids()) == 20


def test_a_400_from_segment_fails_the_run_with_count_and_reason(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    seed_events(path, with_external=40, without_external=0)
    segment_standin.set_faults(reject_requests=1000)
    result = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert result.exit_code == 1, result.output
    assert "40 message(s) failed, 0 stayed pending (sent 0" in result.output
    assert "40 x HTTP 400: Segment refused the request" in result.output
    [(_, status, sent, failed, error)] = sync_runs(path)
    assert (status, sent, failed) == ("failure", 0, 40) and "HTTP 400" in error
    assert WRITE_KEY not in result.output


def test_a_clean_run_still_succeeds_and_exits_zero(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url})
    seed_events(path, with_external=10, without_external=0)
    result = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert result.exit_code == 0, result.output
    assert [r[1] for r in sync_runs(path)] == ["success"]


def test_a_401_leaves_every_message_pending_and_names_the_settings_not_the_key(
    write_settings, strict_segment_standin, monkeypatch
):
    """strict_auth stand-in: Segment documents 200 for a wrong key or region; should it ever
    answer 401, nothing is marked failed and the error names what to check."""
    from segment_sync_tests.conftest import EU_WRITE_KEY

    segment_standin = strict_segment_standin
    path = write_settings(outbound={"base_url": segment_standin.url, "chunk_size": 100})
    seed_events(path, with_external=250, without_external=0)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", EU_WRITE_KEY)  # an eu key at the us endpoint
    result = invoke("run", "outbound", "--stream", "events", "--settings", str(path))
    assert result.exit_code == 1, result.output
    failed_line = next(line for line in result.output.splitlines() if "FAILED" in line)
    assert "HTTP 401" in failed_line and segment_standin.url in failed_line
    assert "SEGMENT_WRITE_KEY (outbound.write_key_env)" in failed_line
    assert "outbound.region (us)" in failed_line
    assert EU_WRITE_KEY not in result.output
    settings = load_settings(path)
    assert factory.outbound_state(settings, EU_WRITE_KEY).watermark(Stream.EVENTS) == 0
    with connect(settings.logs.dir) as con:
        outcomes = con.execute(
            "SELECT outcome, count(*) FROM outbound_messages GROUP BY outcome"
        ).fetchall()
    assert outcomes == [("pending", 100)]  # the first chunk; the rest was never read
    [(_, status, _, failed, error)] = sync_runs(path)
    assert status == "failure" and failed == 0 and "configuration" in error
    assert EU_WRITE_KEY not in error


@pytest.mark.parametrize(
    "answer",
    [b'{"success": false}', b"<html>Please log in to the proxy</html>", b""],
    ids=["success_false", "login_page", "empty"],
)
def test_a_200_not_from_segment_leaves_messages_pending_and_fails_the_run(
    answer, write_settings, segment_standin
):
    """A proxy or a wrong outbound.base_url answering 200: nothing delivered, progress stays,
    the run names the problem; the next run against Segment delivers every message."""
    with answering(200, answer, "text/html") as url:
        path = write_settings(outbound={"base_url": url, "max_retries": 1})
        seed_events(path, with_external=3, without_external=0)
        sync = outbound_sync(path)
        with pytest.raises(OutboundFailed) as failed:
            sync.run(Stream.EVENTS, "r-proxy")
    result = failed.value.result
    assert (result.counts.sent, result.counts.pending, result.counts.failed) == (0, 3, 0)
    assert "answered 200 but not as Segment's Tracking API does" in (result.error or "")
    assert classify([result]) == "configuration"  # no automatic retry: a setting to fix
    assert sync.state.watermark(Stream.EVENTS) == 0
    with connect(sync.settings.logs.dir) as con:
        outcomes = con.execute("SELECT outcome, count(*) FROM outbound_messages GROUP BY 1")
        assert outcomes.fetchall() == [("pending", 3)]
    fixed = write_settings(outbound={"base_url": segment_standin.url})
    assert outbound_sync(fixed).run(Stream.EVENTS, "r-segment").counts.sent == 3
    assert len(segment_standin.accepted_message_ids()) == 3
