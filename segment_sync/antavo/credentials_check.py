"""Does Antavo accept the API key, secret and stack? One signed, harmless request proves it.

The request reads a customer that does not exist, `GET /customers/{id}` (Antavo's Customers
API: "Returns detailed customer data"; 404 `NotFoundException` 160212 "Customer not found" for
an unknown ID). Antavo checks the Escher signature first, so a 404 (or a 200, should the ID
exist) proves the key, the secret and the stack; a 401 or 403 disproves them. Nothing changes.
"""

from __future__ import annotations

from segment_sync.antavo import escher
from segment_sync.check_results import CheckResult, Outcome
from segment_sync.http import ApiClient
from segment_sync.redaction import SecretUrl, reveal, without_userinfo

ANTAVO = "Antavo"
PROBE_CUSTOMER = "segment-sync-connection-check"
_UNREACHABLE_FIX = "inbound.base_url / inbound.stack name a reachable Antavo API"


async def check_credentials(
    base_url: str | SecretUrl,
    api_key: str,
    api_secret: str,
    *,
    stack: str,
    key_env: str,
    secret_env: str,
    timeout_s: float = 10.0,
) -> CheckResult:
    """Send the probe; the result names the variables and the stack, never their values."""
    path = f"/customers/{PROBE_CUSTOMER}"
    where = SecretUrl(reveal(base_url).rstrip("/"))
    target = without_userinfo(where.reveal()) + path  # Escher signs; no user:password is sent
    headers = escher.sign_request(api_key, api_secret, stack, "GET", target, b"")
    client = ApiClient(secrets=[api_key, api_secret], timeout_s=timeout_s, max_connections=1)
    async with client:
        timed = await client.timed_request("GET", target, None, headers, fix=_UNREACHABLE_FIX)
    variables = f"{key_env} and {secret_env} (inbound.api_key_env, inbound.api_secret_env)"
    if timed.response is None:
        return CheckResult(ANTAVO, Outcome.FAILED, f"cannot reach {where}: {timed.error}")
    status = timed.response.status_code
    said = client.redactor.text(timed.response.text[:300]) or ""
    if status in (200, 404):
        found = "exists" if status == 200 else "does not exist, as expected"
        text = (
            f"{where} accepted the request signed with {variables} for stack {stack}: "
            f"GET {path} answered {status} (the customer {found})"
        )
        return CheckResult(ANTAVO, Outcome.OK, text)
    if status in (401, 403):
        text = (
            f"{where} refused the request signed with {variables} (HTTP {status}): check that "
            f"they hold the API key and secret of stack {stack} (inbound.stack), from Antavo's "
            f"API settings. Answer: {said}"
        )
        return CheckResult(ANTAVO, Outcome.FAILED, text)
    text = f"{where} answered HTTP {status} to GET {path}: {said}"
    return CheckResult(ANTAVO, Outcome.FAILED, text)
