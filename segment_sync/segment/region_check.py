"""Can one Segment destination (a region, a write key variable, a Public API token variable)
receive what the sync sends? What can be proven, and how the user proves the rest.

Segment's Tracking API answers 200 to a write key it does not know and to a key of the other
region, and drops their messages (HTTP API docs, "Errors" and the EU note), so a request to it
proves only that the endpoint answers. The region is proven with a Public API token: the
workspace that owns the write key is served by its region's Public API host.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from segment_sync.check_results import CheckResult, Outcome
from segment_sync.redaction import SecretUrl
from segment_sync.segment.client import SegmentClient
from segment_sync.segment.public_api import ApiAnswer, PublicApiClient, SourceSearch, workspace_of
from segment_sync.settings import OutboundSettings

REGIONS = ("us", "eu")
ENDPOINT, WRITE_KEY, REGION = "Segment endpoint", "Segment write key", "Segment region"
# A write key is the HTTP Basic user name: printable ASCII without spaces, quotes or ':'.
_WRITE_KEY = re.compile(r"[!#-&(-9;-~]+")


@dataclass(frozen=True)
class SegmentDestination:
    """One Segment source to send to: its region, Tracking API endpoint and secret variables."""

    region: str
    endpoint: SecretUrl
    write_key_env: str
    public_api_token_env: str | None = None

    @classmethod
    def from_outbound(cls, outbound: OutboundSettings) -> SegmentDestination:
        """Today's one destination, from the `outbound` settings."""
        return cls(
            outbound.region,
            outbound.endpoint,
            outbound.write_key_env,
            outbound.public_api_token_env,
        )


async def check_destination(
    destination: SegmentDestination,
    *,
    environ: Mapping[str, str] = os.environ,
    public_api_base_url: SecretUrl | None = None,
    timeout_s: float = 10.0,
) -> list[CheckResult]:
    """The endpoint and the region of one destination, each proven, disproven or explained."""
    env = destination.write_key_env
    key = environ.get(env, "")
    if not key:
        text = f"outbound is off: environment variable {env} (outbound.write_key_env) is not set"
        return [CheckResult("Segment", Outcome.NOT_CHECKED, text)]
    if not _WRITE_KEY.fullmatch(key):
        return [CheckResult(WRITE_KEY, Outcome.FAILED, _malformed_key(env))]
    results = [await _probe_endpoint(destination, key, timeout_s)]
    token_env = destination.public_api_token_env
    if token_env is None:
        results.append(CheckResult(REGION, Outcome.NOT_VERIFIED, _how_to_verify(destination)))
        return results
    token = environ.get(token_env, "")
    if not token:
        text = (
            f"environment variable {token_env} (outbound.public_api_token_env) is not set; "
            f"export {token_env}=<Public API token>, or remove outbound.public_api_token_env"
        )
        results.append(CheckResult(REGION, Outcome.FAILED, text))
        return results
    async with PublicApiClient(token, base_url=public_api_base_url, timeout_s=timeout_s) as api:
        results.append(await _check_region(destination, key, token_env, api))
    return results


async def _probe_endpoint(
    destination: SegmentDestination, key: str, timeout_s: float
) -> CheckResult:
    """An empty batch (no data): reachable, or the status that proves a setting wrong."""
    async with SegmentClient(destination.endpoint, key, timeout_s=timeout_s) as client:
        answer = await client.check_write_key()
    url, env, region = client.url, destination.write_key_env, destination.region
    if answer.status_code is None:
        return CheckResult(ENDPOINT, Outcome.FAILED, f"cannot reach {url}: {answer.error}")
    if 200 <= answer.status_code < 300 and answer.error is None:
        text = (
            f"{url} answered {answer.status_code} to an empty batch: it is reachable (Segment "
            "answers 200 to any write key, so this proves neither the key nor the region)"
        )
        return CheckResult(ENDPOINT, Outcome.OK, text)
    said = (answer.response_body or "")[:300]
    if answer.status_code in (401, 403):
        text = (
            f"{url} refused the write key in {env} (HTTP {answer.status_code}): check that "
            f"{env} holds the source's write key and that outbound.region ({region}) is the "
            f"workspace's region. Answer: {said}"
        )
        return CheckResult(ENDPOINT, Outcome.FAILED, text)
    if 200 <= answer.status_code < 300:  # answered, but not as Segment does (a portal, a proxy)
        return CheckResult(ENDPOINT, Outcome.FAILED, answer.error or "")
    return CheckResult(ENDPOINT, Outcome.FAILED, f"{url} answered {answer.error}")


async def _check_region(
    destination: SegmentDestination, key: str, token_env: str, api: PublicApiClient
) -> CheckResult:
    """Which regional host serves the token's workspace, and does it own the write key?"""
    configured = destination.region
    answers: dict[str, ApiAnswer] = {}
    for region in (configured, *(r for r in REGIONS if r != configured)):
        answers[region] = answer = await api.workspace(region)
        if answer.ok:
            break
        if not answer.refused:
            return CheckResult(
                REGION, Outcome.FAILED, f"cannot ask the Segment Public API: {answer.described()}"
            )
    else:
        hosts = " and ".join(str(a.url) for a in answers.values())
        statuses = "/".join(str(a.status) for a in answers.values())
        text = (
            f"the Segment Public API refused the token in {token_env} "
            f"(outbound.public_api_token_env): HTTP {statuses} at {hosts}. Export {token_env} "
            "again with a current Public API token of the workspace (Segment: Settings > "
            "Access Management > Tokens)"
        )
        return CheckResult(REGION, Outcome.FAILED, text)
    workspace = workspace_of(answers[region])
    search = await api.find_source(region, key)
    return _verdict(destination, token_env, region, str(api.host(region)), workspace, search)


def _verdict(
    destination: SegmentDestination,
    token_env: str,
    region: str,
    host: str,
    workspace: dict,
    search: SourceSearch,
) -> CheckResult:
    """The check's words for what the Public API showed."""
    env, configured = destination.write_key_env, destination.region
    named = _named(workspace, "workspace")
    if search.failure is not None:
        text = f"cannot list the sources of {named}: {search.failure.described()}"
        return CheckResult(REGION, Outcome.FAILED, text)
    if search.source is None:
        if search.sources_seen and not search.write_keys_seen:
            text = (
                f"the token in {token_env} sees no write keys in {named} (Segment leaves a "
                "source's writeKeys empty for a token without the Source Admin permission): "
                "give the token Source Admin, or remove outbound.public_api_token_env and "
                "verify the region in the source's Debugger"
            )
        else:
            text = (
                f"the write key in {env} belongs to no source of {named} (region {region}, "
                f"{search.sources_seen} sources), the workspace the token in {token_env} opens: "
                f"check that {env} holds the Antavo source's write key, and that the token is "
                "one of that source's workspace"
            )
        return CheckResult(REGION, Outcome.FAILED, text)
    owner = (
        f"the write key in {env} belongs to {_named(search.source, 'source')} of {named}, "
        f"whose region is {region} (its Public API host {host} serves it)"
    )
    if region == configured:
        return CheckResult(REGION, Outcome.OK, f"{owner}; outbound.region is {configured}")
    text = (
        f"outbound.region is {configured}, but {owner}. Segment answers 200 to a key sent to "
        f"the other region's endpoint and drops every message. Fix: set outbound.region: "
        f"{region} in the settings file"
    )
    return CheckResult(REGION, Outcome.FAILED, text)


def _named(thing: dict, kind: str) -> str:
    """`source "Antavo" (antavo)`: its name and slug as the Public API gave them."""
    name, slug = thing.get("name"), thing.get("slug")
    shown = f'{kind} "{name}"' if name else f"{kind} {thing.get('id', '(unnamed)')}"
    return f"{shown} ({slug})" if slug else shown


def _malformed_key(env: str) -> str:
    return (
        f"the value of {env} (outbound.write_key_env) cannot be a write key: it holds a space, "
        "a quote, ':' or a character outside printable ASCII (the value is not shown); export "
        f"{env} again with the write key from the Antavo source's settings in Segment"
    )


def _how_to_verify(destination: SegmentDestination) -> str:
    """What no answer of the Tracking API can show, and how the user checks it."""
    env, region = destination.write_key_env, destination.region
    return "\n".join(
        [
            "Segment answers 200 to a write key it does not know and to a key of the other "
            "region, and drops their messages,",
            f"so no answer of its endpoint shows whether {env} holds the write key of a source "
            f"in a {region} workspace. To verify it:",
            "1. in Segment, open Connections > Sources and select the source whose write key "
            f"{env} holds;",
            "2. open its Debugger tab;",
            "3. send something: `segment-sync run outbound` (or let the sensors run);",
            "4. the events must appear in the Debugger within a minute. If none appear, the key "
            f"or outbound.region ({region}) is wrong:",
            "   fix it and run again (progress belongs to the endpoint and the key, so a "
            "corrected destination starts from the first row).",
            "Or let --connect verify it: set outbound.public_api_token_env to the name of a "
            "variable holding a Segment Public API token (Team and Business plans).",
        ]
    )
