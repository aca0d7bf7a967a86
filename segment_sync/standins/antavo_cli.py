"""The Antavo stand-in as a process: `python -m segment_sync.standins.antavo --port N`.

The server (uvicorn, starlette) is imported when it starts, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from segment_sync.standins.labels import ANTAVO_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.ports import tcp_port


def run_antavo_standin(
    host: str,
    port: int,
    api_key: str,
    api_secret: str,
    stack: str = "test",
    *,
    known_customers: set[str] | None = None,
    rate_limit_per_minute: int | None = None,
    rate_limit_window_s: float = 60.0,
    error_rate: float = 0.0,
    seed: int | None = None,
    on_event: Callable[[dict, str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the stand-in with uvicorn until interrupted (blocking)."""
    import uvicorn

    from segment_sync.standins.antavo import AntavoStandin

    standin = AntavoStandin(
        api_key,
        api_secret,
        stack=stack,
        known_customers=known_customers,
        rate_limit_per_minute=rate_limit_per_minute,
        rate_limit_window_s=rate_limit_window_s,
        error_rate=error_rate,
        seed=seed,
        on_event=on_event,
    )
    print(f"{STANDIN_LABEL}: stack {stack} on http://{host}:{port}", file=sys.stderr, flush=True)
    uvicorn.run(
        standin.app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off"
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the stand-in (secrets only through environment variables)."""
    parser = argparse.ArgumentParser(
        prog="python -m segment_sync.standins.antavo", description=STANDIN_LABEL
    )
    parser.add_argument("--port", type=tcp_port, required=True, help="loopback port to listen on")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--stack", default="test", help="Antavo stack name the signatures are scoped to"
    )
    parser.add_argument(
        "--api-key-env",
        default="ANTAVO_API_KEY",
        metavar="ENV_VAR",
        help="env var holding the accepted API key",
    )
    parser.add_argument(
        "--api-secret-env",
        default="ANTAVO_API_SECRET",
        metavar="ENV_VAR",
        help="env var holding the API secret",
    )
    parser.add_argument(
        "--known-customer",
        action="append",
        default=None,
        metavar="ID",
        help="a customer that exists (repeatable; default: every customer)",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=None,
        help="answer 429 above this many requests per window",
    )
    parser.add_argument(
        "--rate-limit-window",
        type=float,
        default=60.0,
        dest="window_s",
        help="rate-limit window in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed, so injected faults repeat"
    )
    parser.add_argument(
        "--log-level", default="warning", help="uvicorn log level (default: %(default)s)"
    )
    parser.add_argument(
        "--loyalty-store",
        default=None,
        metavar="URL",
        help="register accepted events in this loyalty store (origin 'segment'), as Antavo would",
    )
    return parser


def loyalty_sink(url: str | None) -> Callable[[dict, str], None] | None:
    if not url:
        return None
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.standins.loyalty_sink import LoyaltySink

    return LoyaltySink(LoyaltyStore(url))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read the credentials from the environment, run the stand-in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in (args.api_key_env, args.api_secret_env):
        if not os.environ.get(name):
            parser.error(f"environment variable {name} is not set")
    try:
        run_antavo_standin(
            args.host,
            args.port,
            os.environ[args.api_key_env],
            os.environ[args.api_secret_env],
            args.stack,
            known_customers=set(args.known_customer) if args.known_customer else None,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_limit_window_s=args.window_s,
            error_rate=args.error_rate,
            seed=args.seed,
            on_event=loyalty_sink(args.loyalty_store),
            log_level=args.log_level,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0
