"""`settings check --connect`: prove what can be proven of the Segment and Antavo settings.

Imported only when --connect is given, so `settings check` alone stays offline and fast.
"""

from __future__ import annotations

import os
from dataclasses import replace

from segment_sync.antavo.credentials_check import ANTAVO, check_credentials
from segment_sync.check_results import CheckResult, Outcome
from segment_sync.segment.region_check import SegmentDestination, check_destination
from segment_sync.settings import Settings, SettingsError

TIMEOUT_S = 10.0


async def connect_checks(settings: Settings) -> list[CheckResult]:
    """Every check --connect makes: each Segment destination, then Antavo."""
    results: list[CheckResult] = []
    for name in settings.destination_names():
        outbound = settings.for_destination(name).outbound
        found = await check_destination(
            SegmentDestination.from_outbound(outbound),
            public_api_base_url=outbound.public_api_base_url,
            timeout_s=TIMEOUT_S,
        )
        results += found if name is None else [_of_destination(r, name) for r in found]
    results.append(await _antavo(settings))
    return results


def _of_destination(result: CheckResult, name: str) -> CheckResult:
    """A destination's result, named for it, its settings' keys as they are written."""
    text = result.text
    for key in ("region", "write_key_env", "public_api_token_env"):
        text = text.replace(f"outbound.{key}", f"outbound.destinations[{name}].{key}")
    return replace(result, name=f"{result.name} ({name})", text=text)


async def _antavo(settings: Settings) -> CheckResult:
    """The Antavo side, when its key and secret are in the environment."""
    inbound = settings.inbound
    for env, key in (
        (inbound.api_key_env, "inbound.api_key_env"),
        (inbound.api_secret_env, "inbound.api_secret_env"),
    ):
        if not os.environ.get(env):
            text = f"inbound is off: environment variable {env} ({key}) is not set"
            return CheckResult(ANTAVO, Outcome.NOT_CHECKED, text)
    try:
        api_key, api_secret = settings.antavo_credentials()
    except SettingsError as exc:
        return CheckResult(ANTAVO, Outcome.FAILED, "; ".join(exc.problems))
    return await check_credentials(
        inbound.endpoint,
        api_key,
        api_secret,
        stack=inbound.stack,
        key_env=inbound.api_key_env,
        secret_env=inbound.api_secret_env,
        timeout_s=TIMEOUT_S,
    )
