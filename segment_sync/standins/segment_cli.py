"""The Segment stand-in as a process: `python -m segment_sync.standins.segment --port N`.

The server (uvicorn, starlette) is imported when it starts, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from segment_sync.standins.labels import SEGMENT_REGIONS as REGIONS
from segment_sync.standins.labels import SEGMENT_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.ports import tcp_port
from segment_sync.standins.segment_faults import SegmentFaults


def run_segment_standin(
    port: int,
    host: str = "127.0.0.1",
    region: str = "us",
    write_keys: Mapping[str, str] | None = None,
    faults: SegmentFaults | None = None,
    keep_messages: bool = True,
    log_level: str = "warning",
    strict_auth: bool = False,
) -> None:
    """Serve the stand-in with uvicorn until interrupted (blocking)."""
    import uvicorn

    from segment_sync.standins.segment import SegmentStandin

    standin = SegmentStandin(
        region, write_keys or {}, faults, keep_messages, strict_auth=strict_auth
    )
    print(f"{STANDIN_LABEL}: region {region} on http://{host}:{port}", file=sys.stderr, flush=True)
    uvicorn.run(
        standin.app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off"
    )


def parse_write_keys(pairs: Sequence[str], env_pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=region` and `ENV_VAR=region` pairs as {key: region}; ValueError without echoing keys."""
    keys: dict[str, str] = {}
    for pair in pairs:
        key, sep, region = pair.rpartition("=")
        if not sep or not key or region not in REGIONS:
            raise ValueError("--write-key needs KEY=REGION with REGION us or eu")
        keys[key] = region
    for pair in env_pairs:
        name, sep, region = pair.rpartition("=")
        if not sep or region not in REGIONS or not os.environ.get(name):
            raise ValueError("--write-key-env needs ENV_VAR=REGION, the variable set, REGION us/eu")
        keys[os.environ[name]] = region
    return keys


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the stand-in."""
    parser = argparse.ArgumentParser(
        prog="python -m segment_sync.standins.segment", description=STANDIN_LABEL
    )
    add = parser.add_argument
    add("--port", type=tcp_port, required=True, help="loopback port to listen on")
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--region", choices=REGIONS, default="us", help="region this endpoint serves")
    add(
        "--write-key",
        action="append",
        default=[],
        metavar="KEY=REGION",
        help="accept this write key for that region (repeatable; prefer --write-key-env)",
    )
    add(
        "--write-key-env",
        action="append",
        default=[],
        metavar="ENV_VAR=REGION",
        help="accept the write key held by ENV_VAR for that region (repeatable)",
    )
    add("--error-rate", type=float, default=0.0, help="share of requests answered 500/503")
    add("--throttle-rate", type=float, default=0.0, help="share of requests answered 429")
    add(
        "--retry-after",
        type=float,
        default=0.05,
        dest="retry_after_s",
        help="Retry-After seconds sent with a 429 (default: %(default)s)",
    )
    add("--outage-requests", type=int, default=0, help="answer the first N requests 503")
    add("--delay", type=float, default=0.0, dest="delay_s", help="seconds to wait before answering")
    add("--seed", type=int, default=None, help="random seed, so injected faults repeat")
    add(
        "--refuse-marker",
        default="",
        metavar="KEY",
        help="answer 400 to any request carrying a message whose properties or traits have KEY "
        "(real Segment does not; models a 400 caused by one message)",
    )
    add(
        "--strict-auth",
        action="store_true",
        help="answer 401 to a missing, unknown or other-region write key; NOT Segment's "
        "documented behaviour (it answers 200 and drops the messages, which GET "
        "/_standin/dropped counts)",
    )
    add(
        "--no-keep-messages",
        action="store_true",
        help="count messages but keep none in memory (benchmarks)",
    )
    add("--log-level", default="warning", help="uvicorn log level (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the stand-in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        write_keys = parse_write_keys(args.write_key, args.write_key_env)
        faults = SegmentFaults()
        faults.update(
            {
                "error_rate": args.error_rate,
                "throttle_rate": args.throttle_rate,
                "retry_after_s": args.retry_after_s,
                "outage_requests": args.outage_requests,
                "delay_s": args.delay_s,
                "seed": args.seed,
                "refuse_marker": args.refuse_marker,
            }
        )
    except ValueError as exc:
        parser.error(str(exc))
    run_segment_standin(
        args.port,
        args.host,
        args.region,
        write_keys,
        faults,
        keep_messages=not args.no_keep_messages,
        log_level=args.log_level,
        strict_auth=args.strict_auth,
    )
    return 0
