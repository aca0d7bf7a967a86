"""The Public API stand-in as a process: `segment-sync standin segment-public-api --port N`.

One workspace per process, in the region given; point `outbound.public_api_base_url` at
`http://127.0.0.1:PORT/{region}`. The server is imported when it starts: `--help` is fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from segment_sync.standins.labels import SEGMENT_PUBLIC_API_STANDIN_LABEL as STANDIN_LABEL
from segment_sync.standins.labels import SEGMENT_REGIONS as REGIONS
from segment_sync.standins.ports import tcp_port


def _secret(value: str | None, env: str | None, what: str) -> str:
    """A secret given directly or (better) by the name of the variable holding it."""
    if env:
        if not os.environ.get(env):
            raise ValueError(f"--{what}-env names {env}, which is not set")
        return os.environ[env]
    if not value:
        raise ValueError(f"give --{what}-env ENV_VAR (or --{what})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the stand-in."""
    parser = argparse.ArgumentParser(
        prog="python -m segment_sync.standins.segment_public_api", description=STANDIN_LABEL
    )
    add = parser.add_argument
    add("--port", type=tcp_port, required=True, help="loopback port to listen on")
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--region", choices=REGIONS, default="us", help="the workspace's region")
    add("--workspace-name", default="Loyalty", help="the workspace's name")
    add("--token-env", metavar="ENV_VAR", help="the variable holding the workspace's token")
    add("--token", help="the workspace's token (prefer --token-env)")
    add("--write-key-env", metavar="ENV_VAR", help="the variable holding the Antavo source's key")
    add("--write-key", help="the Antavo source's write key (prefer --write-key-env)")
    add("--other-sources", type=int, default=0, help="sources listed before the Antavo one")
    add(
        "--no-source-admin",
        action="store_true",
        help="the token lacks Source Admin: every source's writeKeys comes back empty",
    )
    add("--log-level", default="warning", help="uvicorn log level (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until interrupted (the server is imported only then, so
    `--help` answers at once)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        token = _secret(args.token, args.token_env, "token")
        write_key = _secret(args.write_key, args.write_key_env, "write-key")
    except ValueError as exc:
        parser.error(str(exc))
    import uvicorn

    from segment_sync.standins.segment_public_api import SegmentPublicApiStandin, workspace_with

    workspace = workspace_with(
        args.region,
        token,
        [write_key],
        name=args.workspace_name,
        other_sources=max(0, args.other_sources),
        source_admin=not args.no_source_admin,
    )
    standin = SegmentPublicApiStandin([workspace])
    where = f"http://{args.host}:{args.port}/{{region}}"
    print(f"{STANDIN_LABEL}: a {args.region} workspace at {where}", file=sys.stderr, flush=True)
    uvicorn.run(
        standin.app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
    )
    return 0
