"""The data flow as assets: lineage, one asset per outbound stream, log tables observed (never
materialized) when written, run tags with counts, and sensor ticks that say why they requested nothing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from segment_sync.definitions import build_definitions
from segment_sync.defs.assets import store_kind, store_specs
from segment_sync.defs.tags import FAILED_TAG, SENT_TAG, SKIPPED_TAG
from segment_sync.inbound.buffer import InboundBuffer
from segment_sync.loyalty.records import NewEvent, NewProfileChange
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.settings import SettingsError, load_settings, parse_settings

ORDERS = {"name": "Orders", "action": "loyalty_event",
          "fields": {"action": {"@literal": "checkout"}}}  # fmt: skip


def _materialized(result) -> list[str]:
    """The asset keys a run materialized, in order."""
    return [
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    ]


def _observed(result) -> list[str]:
    """The asset keys a run observed, in order."""
    return [
        e.event_specific_data.asset_observation.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]


def _upstream(defs: dg.Definitions, key: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}


def _store_with_both_streams(path) -> None:
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    store.append_events([NewEvent("c-1", "point_add", {"points": 1})])
    store.append_profile_changes([NewProfileChange("c-1", {"email": "a@example.com"})])


def test_the_lineage_runs_from_the_loyalty_store_to_segment_and_from_segment_to_antavo(
    write_settings,
):
    defs = build_definitions(str(write_settings()))
    assert _upstream(defs, "segment_track_calls") == {"loyalty_events"}
    assert _upstream(defs, "segment_identify_calls") == {"loyalty_profile_changes"}
    assert _upstream(defs, "antavo_events") == {"segment_webhook_events"}
    both = {"segment_track_calls", "segment_identify_calls"}
    assert _upstream(defs, "outbound_log") == both
    assert _upstream(defs, "outbound_messages") == both
    assert _upstream(defs, "inbound_log") == {"antavo_events"}
    assert _upstream(defs, "inbound_items") == {"segment_webhook_events"}


def _groups(defs: dg.Definitions) -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    return groups


def test_outbound_and_inbound_are_groups_of_their_own_beside_the_store_and_the_logs(
    write_settings,
):
    groups = _groups(build_definitions(str(write_settings())))
    assert groups["loyalty_platform"] == {"loyalty_events", "loyalty_profile_changes"}
    assert groups["outbound"] == {"segment_track_calls", "segment_identify_calls"}
    assert groups["inbound"] == {"segment_webhook_events", "antavo_events"}
    assert set(groups) == {"loyalty_platform", "outbound", "inbound", "segment_sync_logs"}


def test_the_expanded_lineage_link_opens_every_group_of_the_code_location(write_settings):
    from segment_sync.defs.assets import EXPANDED_LINEAGE_PATH

    path, _, expanded = EXPANDED_LINEAGE_PATH.partition("?expanded=")
    assert path == "/asset-groups"  # Dagster's global lineage
    ids = expanded.split(",")
    # Dagster's UI names a group `global@global:<name>` (without per-location groups).
    assert all(i.startswith("global@global:") for i in ids)
    groups = _groups(build_definitions(str(write_settings())))
    assert sorted(i.removeprefix("global@global:") for i in ids) == sorted(groups)


def test_antavo_events_lead_back_into_the_loyalty_store_without_a_cycle(write_settings):
    defs = build_definitions(str(write_settings()))
    assert _upstream(defs, "loyalty_events") == {"antavo_events"}
    assert _upstream(defs, "loyalty_profile_changes") == {"antavo_events"}
    graph = defs.resolve_asset_graph()
    # The loop reads as a path (Dagster refuses a cycle): webhook -> Antavo -> store -> Segment.
    assert graph.toposorted_asset_keys.index(dg.AssetKey("antavo_events")) < (
        graph.toposorted_asset_keys.index(dg.AssetKey("segment_track_calls"))
    )
    for name in ("loyalty_events", "segment_track_calls", "antavo_events"):
        assert "echo" in (graph.get(dg.AssetKey(name)).description or ""), name


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///{tmp}/loyalty.db", "sqlite"),
        ("postgresql://sync@db.internal:5432/loyalty", "postgres"),
    ],
)
def test_the_store_assets_wear_one_kind_badge_the_configured_store(
    write_settings, tmp_path, url, kind
):
    path = write_settings(loyalty_store={"url": url.format(tmp=tmp_path)})
    graph = build_definitions(str(path)).resolve_asset_graph()
    for name in ("loyalty_events", "loyalty_profile_changes"):
        assert graph.get(dg.AssetKey(name)).kinds == {kind}, name


store_urls = st.one_of(
    st.tuples(
        st.just("sqlite"), st.from_regex(r"sqlite:///[a-z][a-z0-9_]{0,20}\.db", fullmatch=True)
    ),
    st.tuples(
        st.just("postgres"),
        st.builds(
            "{}://{}:{}@{}:5432/{}".format,
            st.sampled_from(["postgresql", "postgres", "POSTGRESQL"]),
            st.from_regex(r"[a-z]{1,8}", fullmatch=True),
            st.text(st.characters(codec="ascii", exclude_characters="@/:?#"), min_size=1),
            st.sampled_from(["db.internal", "127.0.0.1", "[::1]"]),
            st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        ),
    ),
)


@given(store_urls)
def test_any_store_url_the_settings_accept_gives_one_badge_of_its_kind(kind_and_url):
    kind, url = kind_and_url
    try:
        settings = parse_settings({"loyalty_store": {"url": url}}, base=Path("/tmp"))
    except SettingsError:
        assume(False)  # not a URL the settings accept: no badge to give
    specs = store_specs(store_kind(settings.loyalty_store.url))
    assert [spec.kinds for spec in specs] == [{kind}, {kind}]


def test_the_log_tables_are_a_group_of_their_own(write_settings):
    graph = build_definitions(str(write_settings())).resolve_asset_graph()
    logs = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name == "segment_sync_logs"
    }
    assert logs == {
        "outbound_log",
        "outbound_messages",
        "inbound_log",
        "inbound_items",
        "sync_runs",
    }


def test_the_sensors_target_the_jobs_that_materialize_the_stream_assets(write_settings):
    defs = build_definitions(str(write_settings()))
    job = defs.resolve_job_def("outbound_sync_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "segment_track_calls",
        "segment_identify_calls",
    }
    assert defs.resolve_sensor_def("outbound_events_sensor").job_name == job.name
    inbound = defs.resolve_job_def("inbound_ingest_job")
    assert {k.to_user_string() for k in inbound.asset_layer.selected_asset_keys} == {
        "antavo_events"
    }


@pytest.mark.parametrize(
    ("stream", "asset"), [("events", "segment_track_calls"), ("profiles", "segment_identify_calls")]
)
def test_a_sensor_request_selects_its_streams_asset_and_the_run_materializes_only_it(
    write_settings, segment_standin, stream, asset
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    _store_with_both_streams(path)
    defs = build_definitions(str(path))
    sensor = defs.resolve_sensor_def(f"outbound_{stream}_sensor")
    with dg.instance_for_test() as instance:
        request = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert [k.to_user_string() for k in request.asset_selection] == [asset]
        result = defs.resolve_job_def("outbound_sync_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            asset_selection=request.asset_selection,
        )
    assert result.success
    assert _materialized(result) == [asset]
    assert _observed(result) == ["outbound_log", "outbound_messages", "sync_runs"]
    assert [m["type"] for m in segment_standin.messages] == [
        "track" if stream == "events" else "identify"
    ]


def test_materializing_the_identify_asset_without_config_sends_the_profiles_stream(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    _store_with_both_streams(path)
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("segment_identify_calls")]
        )
    assert result.success
    assert [m["type"] for m in segment_standin.messages] == ["identify"]


def test_a_stream_the_asset_selection_excludes_fails_the_run_naming_the_asset_and_sends_nothing(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    _store_with_both_streams(path)
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    config = {"ops": {"sync_outbound_stream": {"config": {"stream": "EVENTS"}}}}
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            run_config=config,
            instance=instance,
            asset_selection=[dg.AssetKey("segment_identify_calls")],
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert "does not include segment_track_calls" in description
    assert segment_standin.messages == []
    assert _materialized(result) == []
    assert _observed(result) == ["sync_runs"]  # the run's failure row was written


def test_an_outbound_run_carries_its_sent_failed_and_skipped_counts_as_tags(
    write_settings, segment_standin
):
    path = write_settings(outbound={"base_url": segment_standin.url})
    LoyaltyStore(load_settings(path).loyalty_store.url).append_events(
        [NewEvent("c-1", "point_add", {"points": 1}), NewEvent("c-2", "point_add", {"points": 2})]
    )
    job = build_definitions(str(path)).resolve_job_def("outbound_sync_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
        tags = instance.get_run_by_id(result.run_id).tags
    assert (tags[SENT_TAG], tags[FAILED_TAG], tags[SKIPPED_TAG]) == ("2", "0", "0")


def test_an_inbound_run_materializes_antavo_events_observes_the_inbound_log_tables_with_tags(
    write_settings, antavo_standin, tmp_path
):
    path = write_settings(
        inbound={"base_url": antavo_standin.url, "buffer_url": f"sqlite:///{tmp_path}/in.db",
                 "max_retries": 0, "mappings": [ORDERS]},
    )  # fmt: skip
    antavo_standin.configure(known_customers={"c-1"})
    InboundBuffer(load_settings(path).inbound.buffer_url).add_many(
        [
            {"type": "track", "event": "Order", "messageId": "ok", "userId": "c-1"},
            {"type": "track", "event": "Order", "messageId": "ghost", "userId": "ghost-9"},
        ]
    )
    job = build_definitions(str(path)).resolve_job_def("inbound_ingest_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        tags = instance.get_run_by_id(result.run_id).tags
    assert not result.success  # one event failed: the run says so
    assert _materialized(result) == ["antavo_events"]
    assert _observed(result) == ["inbound_log", "inbound_items", "sync_runs"]
    assert (tags[SENT_TAG], tags[FAILED_TAG]) == ("1", "1")


def test_the_buffer_sensor_says_why_when_its_run_already_took_the_pending_items(
    write_settings, tmp_path
):
    path = write_settings(
        inbound={"buffer_url": f"sqlite:///{tmp_path}/in.db", "mappings": [ORDERS]}
    )
    InboundBuffer(load_settings(path).inbound.buffer_url).add_many(
        [{"type": "track", "event": "Order", "messageId": "m-1", "userId": "c-1"}]
    )
    defs = build_definitions(str(path))
    sensor = defs.resolve_sensor_def("inbound_buffer_sensor")
    with dg.instance_for_test() as instance:
        request = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert isinstance(request, dg.RunRequest)
        run = instance.create_run_for_job(
            defs.resolve_job_def("inbound_ingest_job"),
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        again = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert isinstance(again, dg.SkipReason)
    assert f"run {run.run_id}" in again.skip_message and "already took them" in again.skip_message
