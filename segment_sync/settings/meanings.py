"""What each setting means, for the generated reference (`reference.py`).

Types, bounds and defaults are read from the models; only the prose lives here. Links are
relative to `docs/settings.md`, where the reference is rendered.
"""

from __future__ import annotations

SECTIONS = {
    "general": "How customers are identified, both ways.",
    "loyalty_store": "The loyalty platform's store the outbound sync reads (and the Antavo "
    "stand-in writes to).",
    "outbound": "Loyalty events and profile changes to Segment's Tracking API "
    "([what a run sends](operations/outbound.md)).",
    "logs": "Where the Parquet logs and the analysts' DuckDB file live "
    "([querying the logs](operations/logs.md)).",
    "inbound": "The webhook receiver, its durable buffer and the ingest to Antavo's Events API "
    "([what an inbound run guarantees](operations/inbound.md)).",
    "inbound.mappings[]": "One Antavo (Actions) mapping: which Segment events (trigger) become "
    "which Antavo event. None is active unless listed (Segment's destination ships no presets).",
    "outbound.destinations[]": "One Segment source a routed customer's messages go to "
    "([regions](deploying/regions.md)).",
    "maintenance": "Log compaction and the outbound reconciliation (retention is "
    "`logs.retention_days`).",
    "maintenance.checks": "Thresholds of the asset checks on the log tables "
    "([checks](operations/checks.md)).",
    "alerts": "Failures posted to a Slack-compatible incoming webhook; off until "
    "`alerts.webhook_url_env` is set ([alerts](operations/alerts.md)).",
    "executor": "Where runs execute their steps ([Celery](deploying/celery.md)).",
}

MEANINGS = {
    "general.customer_id_mapping": "The identifier in every event either way. Outbound it is "
    "the Segment `userId`; inbound, with `external_customer_id`, the mapped `customer` "
    "(Segment's `userId`) is the external ID and is resolved to the Antavo customer through the "
    "loyalty store (its newest pairing) before registering; an ID the store has never seen "
    "fails the event, naming the ID (replay it after creating the customer).",
    "loyalty_store.url": "The loyalty store (events, profile changes): `sqlite:///path` or "
    "`postgresql://...`.",
    # outbound
    "outbound.write_key_env": "Environment variable holding the Antavo source's write key.",
    "outbound.destinations": "Several Segment sources, one per region (data residency); empty: "
    "the outbound section's own `region` and `write_key_env` are the one destination, as "
    "before. Needs `outbound.route_by` ([regions](deploying/regions.md)).",
    "outbound.destinations[].name": "The destination's name in log rows (`destination`), "
    "`run outbound --destination` and its Dagster assets (`segment_track_calls_NAME`).",
    "outbound.destinations[].region": "`us` or `eu`: the region of this source's workspace.",
    "outbound.destinations[].write_key_env": "Environment variable holding this source's write "
    "key.",
    "outbound.destinations[].base_url": "Override the endpoint (a stand-in); `null`: the "
    "region's Segment endpoint.",
    "outbound.destinations[].public_api_token_env": "Environment variable with a Public API "
    "token of this destination's workspace, for `settings check --connect`; `null`: "
    "`outbound.public_api_token_env`.",
    "outbound.route_by": "Which customer attribute picks a customer's destination: "
    "`{attribute: country, map: {DE: eu, US: us}, default: null}`. The value is the customer's "
    "newest profile change carrying the attribute up to each row; a customer with no mapped "
    "value fails with a reason unless `default` names a destination.",
    "outbound.region": "`us` (api.segment.io) or `eu` (events.eu1.segmentapis.com); must match "
    "the workspace.",
    "outbound.base_url": "Override the endpoint (the stand-in); `null` in production.",
    "outbound.event_sync": "Loyalty actions sent as Track calls (allow-list); empty: the events "
    "stream is off.",
    "outbound.customer_fields_sync": "Customer attributes sent as Identify traits (allow-list); "
    "empty: the profiles stream is off.",
    "outbound.state_url": "The sync's own progress (a watermark and a lock per store, "
    "destination and stream).",
    "outbound.chunk_size": "Source rows per chunk (bounds memory).",
    "outbound.max_in_flight": "Concurrent requests to Segment.",
    "outbound.max_retries": "Retries of 429, 5xx and network errors (capped exponential backoff "
    "with jitter, `Retry-After` honoured).",
    "outbound.backoff_cap_s": "The longest wait between two retries.",
    "outbound.timeout_s": "Bounds each connect and each read of a request; twice it bounds each "
    "whole request, connect to last byte.",
    "outbound.retry_failed_after_s": "The sensor starts one more run this long after a run "
    "failed and left rows pending.",
    "outbound.follow_s": "A sensor-launched run (and `run outbound --follow`) keeps sending rows "
    "as they commit for this long, then exits and the sensor starts the next one; `0`: one pass "
    "per run.",
    "outbound.poll_interval_ms": "How often a following run looks for newly committed rows.",
    "outbound.shards": "Customer shards per stream, sent in parallel "
    "([shards](deploying/celery.md#shards)); 1 is the whole stream.",
    "outbound.public_api_token_env": "Environment variable with a Segment Public API token "
    "(Team and Business plans; Source Admin, to see write keys): `settings check --connect` "
    "proves the region with it.",
    "outbound.public_api_base_url": "The Public API stand-in, `http://HOST:PORT/{region}` "
    "(`{region}`: us or eu); `null` in production (api.segmentapis.com, "
    "eu1.api.segmentapis.com).",
    # logs
    "logs.dir": "Parquet log files and the analysts' `segment_sync.duckdb`.",
    "logs.retention_days": "The maintenance schedule deletes older rows.",
    # inbound
    "inbound.stack": "Antavo stack: `https://api.<stack>.antavo.com`.",
    "inbound.base_url": "Override the Antavo endpoint (the stand-in); `null` in production.",
    "inbound.api_key_env": "Environment variable with the Antavo API key (Escher signing).",
    "inbound.api_secret_env": "Environment variable with the Antavo API secret.",
    "inbound.webhook_secret_env": "Environment variable with the Webhooks (Actions) shared secret.",
    "inbound.buffer_url": "The durable webhook buffer.",
    "inbound.multi_accounts": "When on, every mapping must map `account`.",
    "inbound.rate_limit_per_minute": "Client-side limit (1,500 shared stack, 20,000 dedicated).",
    "inbound.rate_limiter": "Where that limit lives: `local` (each ingest process paces alone), "
    "`redis` or `postgres` (one limit shared by every process; see "
    "[one rate limit across processes](deploying/rate-limit.md)).",
    "inbound.rate_limiter_url_env": "Environment variable with the shared limiter's URL "
    "(`redis://host:6379/0` or `postgresql://...`); required unless `rate_limiter` is `local`; "
    "a secret, never logged.",
    "inbound.mappings": "The mappings; none: nothing is sent and received events stay buffered "
    "(as in Segment, which ships no presets). The example file lists the manual's two actions.",
    "inbound.max_attempts": "Tries per buffered item before it is marked failed.",
    "inbound.chunk_size": "Buffered items per ingest chunk.",
    "inbound.max_in_flight": "Concurrent requests to Antavo.",
    "inbound.max_retries": "HTTP retries per Antavo request.",
    "inbound.lease_s": "A run's claim on buffered items; renewed every `lease_s/3` while it "
    "lives, taken over by the next run once a killed run's lease lapses.",
    "inbound.max_body_bytes": "Receiver: the largest request body (413 beyond).",
    "inbound.webhook_token_env": "Environment variable with a bearer token the destination "
    "sends in its Headers field; when set, every request needs `Authorization: Bearer <token>`.",
    "inbound.allow_unverified_batches": "Accept batches of more than one event without a token "
    "(their X-Signature covers only the first event).",
    "inbound.read_timeout_s": "Receiver: time to receive request headers, and the body (408 "
    "beyond).",
    "inbound.max_connections": "Receiver: open connections (503 beyond).",
    "inbound.max_unverified_bytes": "Receiver: memory for bodies not yet authenticated (503 with "
    "`Retry-After` beyond).",
    # inbound.mappings[]
    "inbound.mappings[].name": "The mapping's name, unique; `mappings preview --mapping NAME` "
    "and the logs use it.",
    "inbound.mappings[].action": "`loyalty_event` (Antavo's action from the `action` field) or "
    "`profile_update` (Antavo action `profile`, default data fields).",
    "inbound.mappings[].trigger": "Segment's subscription language, e.g. "
    '`type = "track" and event = "Order Completed"`; `null`: the action\'s default '
    '(`type = "track"` or `type = "identify"`).',
    "inbound.mappings[].fields": "Field mappings (`@path`, `@literal`, `@template`, `@if`) of "
    "`customer`, `action`, `account`, `data`.",
    "inbound.mappings[].enabled": "A disabled mapping is kept but matches nothing.",
    # maintenance
    "maintenance.compact_min_files": "The hourly maintenance merges a day's log files once it "
    "has this many.",
    "maintenance.reconcile_lookback_hours": "The hourly reconciliation resends undelivered "
    "events and profile changes of this window; shorter than `logs.retention_days`.",
    "maintenance.checks": "The asset checks' limits (below).",
    "maintenance.checks.outbound_error_rate_max": "`outbound_error_rate` fails above this share "
    "of undelivered (failed or pending) outbound messages.",
    "maintenance.checks.outbound_error_rate_window_hours": "The window that share is counted over.",
    "maintenance.checks.inbound_failed_items_max": "`inbound_failed_items` fails when more "
    "buffered Segment events than this failed for good in the last hour.",
    "maintenance.checks.undelivered_event_age_max_minutes": "`oldest_undelivered_event` fails "
    "when a matching loyalty event older than this is undelivered; shorter than "
    "`reconcile_lookback_hours`.",
    "maintenance.checks.source_alive_min_share": "`loyalty_source_alive` fails when the last "
    "hour's new loyalty events are fewer than this share of the median of the same hour over "
    "`source_alive_days` days; 0 turns the check off.",
    "maintenance.checks.source_alive_min_baseline": "`loyalty_source_alive` judges only when "
    "that median reaches this many events an hour (a new or quiet store is not judged).",
    "maintenance.checks.source_alive_days": "How many recent days give `loyalty_source_alive` "
    "its median of the same hour.",
    # alerts
    "alerts.webhook_url_env": "Environment variable holding a Slack incoming-webhook URL (or any "
    'URL taking a POST of `{"text": "..."}`); `null`: alerts off.',
    "alerts.on": "Which failures are posted: failed sync and maintenance runs, failed (or "
    "crashed) log checks.",
    "alerts.ui_base_url": "The Dagster UI the alerts link to (`{ui_base_url}/runs/{run_id}`).",
    "alerts.max_retries": "Retries of a 5xx, 408, 429 or network error per post.",
    "alerts.timeout_s": "Each post's time limit.",
    # executor
    "executor.kind": "Where runs execute their steps: `multiprocess` (Dagster's default, in the "
    "run's own processes) or `celery` (on Celery workers, see "
    "[runs on Celery workers](deploying/celery.md#runs-on-celery-workers)).",
    "executor.celery_broker_url_env": "Environment variable holding the Celery broker URL "
    "(`pyamqp://...` RabbitMQ or `redis://...`); a secret, never shown.",
    "executor.celery_backend_url_env": "Environment variable holding the result backend URL "
    "(`redis://...`); a secret, never shown.",
}
