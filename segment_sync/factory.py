"""The one place that builds the sync's infrastructure from settings and secrets.

The core (OutboundSync, InboundIngest) receives what is built here; Dagster resources and the
CLI both call these functions, so a run started either way talks to the same things.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from segment_sync.http import RetryPolicy
from segment_sync.logs.store import LogWriter
from segment_sync.loyalty.store import LoyaltyStore
from segment_sync.outbound import single_heir
from segment_sync.outbound.results import OutboundResult
from segment_sync.outbound.route_filter import RouteFilter
from segment_sync.outbound.shards import Shard
from segment_sync.outbound.state import OutboundState, ProgressKey
from segment_sync.outbound.sync import OutboundSync
from segment_sync.redaction import Redactor
from segment_sync.segment.client import SegmentClient
from segment_sync.settings import Settings, SettingsError

if TYPE_CHECKING:  # the inbound side is imported by what builds it: an outbound run never does
    from segment_sync.antavo.client import AntavoClient, AntavoRequestRecord
    from segment_sync.antavo.pacer import RateLimiter
    from segment_sync.inbound.buffer import InboundBuffer
    from segment_sync.inbound.customer_ids import CustomerLookup
    from segment_sync.inbound.ingest import InboundIngest


def log_writer(settings: Settings) -> LogWriter:
    """The writer of the Parquet logs under `logs.dir`, masking the settings' secrets."""
    return LogWriter(settings.logs.dir, redactor=Redactor(settings.secrets()))


def _redacting(logs: LogWriter, redactor: Redactor) -> LogWriter:
    """`logs`, masking the run's secrets (also keys passed in, not read from the settings) in
    every column it writes."""
    logs.redact_with(redactor)
    return logs


def loyalty_store(settings: Settings) -> LoyaltyStore:
    return LoyaltyStore(settings.loyalty_store.url)


def outbound_state(
    settings: Settings, write_key: str, *, store_url: str | None = None, shard: Shard | None = None
) -> OutboundState:
    """Progress of this store towards this destination (the write key is only fingerprinted).

    `shard` default: every shard of `outbound.shards` at once (one, unsharded, by default).
    """
    one_destination(settings)
    source = store_url or settings.loyalty_store.url
    key = ProgressKey.of(source, settings.outbound.endpoint, write_key)
    state = OutboundState(settings.outbound.state_url, key, shard or all_shards(settings))
    single_heir.note(state, single=settings.outbound.destination is None)
    return state


def one_destination(settings: Settings) -> None:
    """With `outbound.destinations`, everything that sends or keeps progress serves one of them
    (`Settings.for_destination`): the outbound section's own region and key are none of them,
    and sending every customer there would break data residency."""
    outbound = settings.outbound
    if outbound.destinations and outbound.destination is None:
        names = ", ".join(d.name for d in outbound.destinations)
        raise SettingsError(
            [
                "outbound.destinations: this command serves one Segment destination and does "
                f"not route customers among {names} (yet); nothing was sent. See "
                "docs/deploying/regions.md for the commands and jobs that route"
            ]
        )


def all_shards(settings: Settings) -> Shard:
    """Every shard of the settings' streams: the whole stream when `outbound.shards` is 1."""
    count = settings.outbound.shards
    return Shard(count, 0 if count == 1 else None)


def segment_client_factory(
    settings: Settings, write_key: str, *, backoff_base_s: float = 0.5
) -> Callable[[], SegmentClient]:
    """A new client per run, as an httpx pool belongs to one event loop."""
    one_destination(settings)
    outbound = settings.outbound

    def client() -> SegmentClient:
        return SegmentClient(
            outbound.endpoint,
            write_key,
            retry=RetryPolicy(outbound.max_retries, backoff_base_s, outbound.backoff_cap_s),
            timeout_s=outbound.timeout_s,
            max_in_flight=outbound.max_in_flight,
        )

    return client


def outbound_sync(
    settings: Settings,
    write_key: str,
    logs: LogWriter | None = None,
    *,
    store: LoyaltyStore | None = None,
    backoff_base_s: float = 0.5,
    on_chunk: Callable[[OutboundResult], None] | None = None,
    shard: Shard | None = None,
) -> OutboundSync:
    """An outbound sync wired to the settings' store, state, Segment endpoint and logs.

    `run` needs one shard; the default (every shard) serves replay and reconciliation.
    """
    store = store or loyalty_store(settings)
    redactor = Redactor([write_key, *settings.secrets()])
    return OutboundSync(
        settings,
        store=store,
        state=outbound_state(settings, write_key, store_url=store.url, shard=shard),
        client=segment_client_factory(settings, write_key, backoff_base_s=backoff_base_s),
        redactor=redactor,
        logs=_redacting(logs or log_writer(settings), redactor),
        on_chunk=on_chunk,
        route=RouteFilter.of(settings, store),
    )


def inbound_buffer(settings: Settings) -> InboundBuffer:
    from segment_sync.inbound.buffer import InboundBuffer

    return InboundBuffer(settings.inbound.buffer_url)


def antavo_client_factory(
    settings: Settings, api_key: str, api_secret: str, *, backoff_base_s: float = 0.2
) -> Callable[[Callable[[AntavoRequestRecord], None]], AntavoClient]:
    """A new client per run, reporting each request to the callback it is given.

    Each client gets its own rate limiter (`inbound.rate_limiter`); a shared one reads its URL
    here, so an unset variable fails before anything is claimed.
    """
    from segment_sync.antavo.client import DEFAULT_RETRY as ANTAVO_RETRY
    from segment_sync.antavo.client import AntavoClient

    inbound = settings.inbound
    limiter = rate_limiter_factory(settings, api_key)

    def client(on_request: Callable[[AntavoRequestRecord], None] | None) -> AntavoClient:
        return AntavoClient(
            inbound.endpoint,
            api_key,
            api_secret,
            stack=inbound.stack,
            rate_limit_per_minute=inbound.rate_limit_per_minute,
            retry=replace(
                ANTAVO_RETRY, max_retries=inbound.max_retries, backoff_base_s=backoff_base_s
            ),
            concurrency=inbound.max_in_flight,
            on_request=on_request,
            pacer=limiter(),
        )

    return client


def rate_limiter_factory(settings: Settings, api_key: str) -> Callable[[], RateLimiter]:
    """New limiters of `inbound.rate_limiter`; shared ones are named by endpoint and key hash."""
    from segment_sync.antavo.shared_pacer import build_rate_limiter, limiter_name

    inbound = settings.inbound
    url = settings.rate_limiter_url()  # SettingsError when the variable is unset

    def limiter() -> RateLimiter:
        return build_rate_limiter(
            inbound.rate_limiter,
            inbound.rate_limit_per_minute,
            url=url,
            name=limiter_name(inbound.endpoint, api_key),
            url_env=inbound.rate_limiter_url_env,
        )

    return limiter


def inbound_ingest(
    settings: Settings,
    api_key: str,
    api_secret: str,
    logs: LogWriter | None = None,
    *,
    buffer: InboundBuffer | None = None,
    backoff_base_s: float = 0.2,
) -> InboundIngest:
    """An ingest wired to the settings' buffer, Antavo stack and logs."""
    from segment_sync.inbound.ingest import InboundIngest

    redactor = Redactor([api_key, api_secret, settings.rate_limiter_url(), *settings.secrets()])
    return InboundIngest(
        settings,
        buffer=buffer or inbound_buffer(settings),
        client=antavo_client_factory(settings, api_key, api_secret, backoff_base_s=backoff_base_s),
        redactor=redactor,
        logs=_redacting(logs or log_writer(settings), redactor),
        customers=external_customer_lookup(settings),
    )


def external_customer_lookup(settings: Settings) -> CustomerLookup | None:
    """The loyalty store's external -> customer ID lookup, when the settings map external IDs."""
    if settings.general.customer_id_mapping != "external_customer_id":
        return None
    return LoyaltyStore(settings.loyalty_store.url).customers_by_external_id
