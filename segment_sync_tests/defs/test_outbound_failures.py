"""Dagster runs of the outbound jobs fail as they should, retry only what a retry can heal, and
replay/resync run from the launchpad's config."""

from __future__ import annotations

import dagster as dg

from segment_sync.definitions import build_definitions
from segment_sync.defs.tags import FAILURE_KIND_TAG
from segment_sync.logs.views import connect
from segment_sync.loyalty.records import NewEvent
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import load_settings
from segment_sync_tests.conftest import EU_WRITE_KEY, WRITE_KEY

WILL_RETRY = "dagster/will_retry"
RETRYING = {"run_retries": {"enabled": True, "max_retries": 0}}


def _events(path, n: int, external: bool = True, action: str = "point_add") -> list[int]:
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    return store.append_events(
        [NewEvent(f"c-{i}", action, {"i": i}, f"x-{i}" if external else None) for i in range(n)]
    )


def _tick(defs, name, instance, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    return defs.resolve_sensor_def(name)(context), context


def _sensor_run(defs, instance):
    """A sensor tick and the run it asks for (with the job's own tags, as the daemon would)."""
    request, context = _tick(defs, "outbound_events_sensor", instance)
    job = defs.resolve_job_def("outbound_sync_job")
    run = job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags={**job.tags, **request.tags},
        raise_on_error=False,
    )
    return run, context


def _failure(run) -> tuple[str, object]:
    [event] = run.get_step_failure_events()
    data = event.event_specific_data
    return data.user_failure_data.description, data.error


def test_permanent_failure_fails_the_run_with_the_reasons_and_is_not_retried(
    write_settings, segment_standin
):
    path = write_settings(
        general={"customer_id_mapping": "external_customer_id"},
        outbound={"base_url": segment_standin.url},
    )
    _events(path, 12)
    _events(path, 5, external=False)
    defs = build_definitions(str(path))
    with dg.instance_for_test(overrides=RETRYING) as instance:
        run, _ = _sensor_run(defs, instance)
        tags = instance.get_run_by_id(run.run_id).tags
    assert not run.success
    description, error = _failure(run)
    assert description.startswith("5 message(s) failed, 0 stayed pending (sent 12")
    assert "5 x customer <id> has no external_customer_id" in description
    assert error.cause is None and error.context is None  # the description, not a chain
    assert tags[FAILURE_KIND_TAG] == "permanent" and tags[WILL_RETRY] == "false"
    with connect(load_settings(path).logs.dir) as con:
        rows = con.execute("SELECT status, messages_failed, error FROM sync_runs").fetchall()
    assert [(s, f) for s, f, _ in rows] == [("failure", 5)] and "external_customer_id" in rows[0][2]


def test_transient_failure_is_left_to_the_run_retries(write_settings, segment_standin):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    _events(path, 3)
    segment_standin.set_faults(outage_requests=1000)
    defs = build_definitions(str(path))
    with dg.instance_for_test(overrides=RETRYING) as instance:
        run, _ = _sensor_run(defs, instance)
        tags = instance.get_run_by_id(run.run_id).tags
    assert not run.success and "HTTP 503" in _failure(run)[0]
    assert tags[FAILURE_KIND_TAG] == "transient" and tags[WILL_RETRY] == "true"


def test_a_401_fails_naming_the_settings_and_the_sensor_does_not_rerun_it(
    write_settings, strict_segment_standin, monkeypatch
):
    """strict_auth stand-in (a 401 Segment does not document): a configuration failure."""
    url = strict_segment_standin.url
    path = write_settings(outbound={"base_url": url, "retry_failed_after_s": 0})
    _events(path, 4)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", EU_WRITE_KEY)
    defs = build_definitions(str(path))
    with dg.instance_for_test(overrides=RETRYING) as instance:
        run, context = _sensor_run(defs, instance)
        tags = instance.get_run_by_id(run.run_id).tags
        later, _ = _tick(defs, "outbound_events_sensor", instance, cursor=context.cursor)
    description, _ = _failure(run)
    assert "HTTP 401" in description and "SEGMENT_WRITE_KEY (outbound.write_key_env)" in description
    assert "outbound.region (us)" in description and EU_WRITE_KEY not in description
    assert tags[WILL_RETRY] == "false" and tags[FAILURE_KIND_TAG] == "configuration"
    assert isinstance(later, dg.SkipReason) and "cannot heal" in later.skip_message


def test_replay_job_from_launchpad_config_delivers_what_an_outage_left_pending(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "max_retries": 0})
    _events(path, 6)
    segment_standin.set_faults(outage_requests=1000)
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        failed, _ = _sensor_run(defs, instance)
        assert not failed.success
        segment_standin.set_faults(outage_requests=0)
        replay = defs.resolve_job_def("outbound_replay_job").execute_in_process(
            run_config={
                "ops": {
                    "replay_outbound_messages": {
                        "config": {"stream": "events", "filter": "Status code is 503"}
                    }
                }
            },
            instance=instance,
        )
    assert replay.success
    assert len(set(segment_standin.accepted_message_ids())) == 6
    with connect(load_settings(path).logs.dir) as con:
        jobs = con.execute("SELECT job, status FROM sync_runs ORDER BY started_at").fetchall()
    assert jobs == [("outbound_sync_job", "failure"), ("outbound_replay_job", "success")]
    assert WRITE_KEY not in repr(replay.all_events)


def test_resync_job_from_launchpad_config_sends_a_newly_allowed_action(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url, "event_sync": ["point_add"]})
    _events(path, 2)
    _events(path, 3, action="checkout")
    defs = build_definitions(str(path))
    with dg.instance_for_test() as instance:
        run, _ = _sensor_run(defs, instance)
        assert run.success and len(segment_standin.accepted_message_ids()) == 2
        path = write_settings(
            outbound={"base_url": segment_standin.url, "event_sync": ["point_add", "checkout"]}
        )
        resync = (
            build_definitions(str(path))
            .resolve_job_def("outbound_resync_job")
            .execute_in_process(
                run_config={
                    "ops": {"resync_outbound_rows": {"config": {"since": "1h", "stream": "events"}}}
                },
                instance=instance,
            )
        )
    assert resync.success
    events = [m["event"] for m in segment_standin.messages]
    assert sorted(events) == ["checkout"] * 3 + ["point_add"] * 4  # point_add twice: deduplicated
    assert len(set(segment_standin.accepted_message_ids())) == 5
