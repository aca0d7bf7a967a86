"""The stand-ins' --port: a TCP port (1-65535), refused otherwise before anything listens."""

from __future__ import annotations

import argparse


def tcp_port(text: str) -> int:
    """argparse type: a port a socket can have; 70000 would be taken modulo 65536 by the OS
    and the stand-in would announce one port while listening on another."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use a number from 1 to 65535")
    return port
